"""Blobs as objects in one bucket of any S3-compatible service: `<prefix><key>`.

Keys are supalite's blob versions (fresh UUIDs), never user input, so they need no escaping.
Bytes stream in both directions and memory stays bounded whatever the object size:

- **put**: the body is cut into parts of exactly `part_size` bytes (the last one shorter).  A
  body of at most one part goes up as one PutObject; a longer one as a multipart upload, one part
  sent while the next is filled (at most two parts held).  S3 makes an object visible only
  when PutObject or CompleteMultipartUpload succeeds, so a blob is whole or absent; on any
  failure (TooLarge, the client going away, an S3 error) the multipart upload is aborted, so
  its parts are not left behind either.
- **open/read**: GetObject, read in chunks of `CHUNK` bytes.  The full GetObject is issued at
  `open`, so a blob that disappears before it is opened is reported there (BlobMissing) and
  the caller can retry with the row's new version; a ranged read issues a ranged GetObject.
- **copy**: CopyObject (server side; objects over 5 GB would need UploadPartCopy, which is not
  implemented: such a copy fails with S3Error).
- **delete**: DeleteObjects in batches of 1000 (S3's limit per request).

A blob's ETag is the one S3 answers, as Supabase's S3 backend keeps it: PutObject's (the MD5 of
the bytes, quoted), CompleteMultipartUpload's for a multipart upload (S3's `"<md5 of the parts'
MD5s>-<parts>"`, not an MD5 of the bytes), CopyObject's for a copy.

Any failure talking to S3 is raised as `S3Error`, an OSError, which the routes and the orphan
sweep already handle as an unavailable disk.  Its message names the operation and S3's error
code, never the credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from supalite.storage.backends import BlobMissing, Stored, TooLarge

CHUNK = 1024 * 1024  # bytes per read from a GetObject body
PART_SIZE = 8 * 1024 * 1024  # bytes per multipart part; S3's minimum is 5 MiB
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_COPY = 5 * 1024**3  # CopyObject's limit
DELETE_BATCH = 1000  # DeleteObjects' limit
_STALE_UPLOAD = dt.timedelta(hours=24)  # older unfinished multipart uploads: a crash's leftovers
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


class S3Error(OSError):
    """An S3 request failed: network, credentials, a missing bucket, the service itself."""


@dataclass(frozen=True)
class S3Config:
    bucket: str
    endpoint: str | None = None  # None: AWS itself
    region: str | None = None
    force_path_style: bool = False
    access_key_id: str | None = None  # None: botocore's own chain (env, ~/.aws, instance role)
    secret_access_key: str | None = field(default=None, repr=False)
    prefix: str = ""
    part_size: int = PART_SIZE

    @property
    def key_prefix(self) -> str:
        p = self.prefix.strip("/")
        return p + "/" if p else ""


def _code(e: ClientError) -> str:
    err: dict[str, Any] = e.response.get("Error", {})
    return str(err.get("Code") or e.response.get("ResponseMetadata", {}).get("HTTPStatusCode"))


@contextlib.contextmanager
def _s3(op: str) -> Iterator[None]:
    """S3 client errors as S3Error: the operation and S3's code, never the request itself."""
    try:
        yield
    except ClientError as e:
        raise S3Error(f"S3 {op} failed: {_code(e)}") from e
    except (BotoCoreError, aiohttp.ClientError) as e:
        raise S3Error(f"S3 {op} failed: {type(e).__name__}") from e


class S3Blob:
    def __init__(self, backend: S3Backend, key: str, size: int, body: Any) -> None:
        self._backend = backend
        self._key = key
        self._body: Any = body  # the open GetObject body (whole object), until used or closed
        self.size = size

    async def read(self, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        last = self.size - 1 if end is None else min(end, self.size - 1)
        body = self._body
        self._body = None
        try:
            if last < start:
                return
            if start != 0 or last != self.size - 1:
                # A part only: the whole-object response opened at `open` is dropped (reading
                # up to `start` from it would cost as much as the skipped bytes).
                if body is not None:
                    body.close()
                    body = None
                body = (await self._backend._get(self._key, f"bytes={start}-{last}"))["Body"]
            remaining = last - start + 1
            while remaining > 0:
                with _s3("GetObject"):
                    data = await body.read(min(CHUNK, remaining))
                if not data:
                    raise S3Error("S3 GetObject failed: body ended early")
                remaining -= len(data)
                yield data
        finally:
            if body is not None:
                body.close()  # releases (or, if unread, drops) the connection

    async def close(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None


class S3Backend:
    def __init__(self, config: S3Config, client: Any, stack: AsyncExitStack) -> None:
        self.config = config
        self.bucket = config.bucket
        self.prefix = config.key_prefix
        self.part_size = max(config.part_size, MIN_PART_SIZE)
        self._client = client
        self._stack = stack

    @classmethod
    async def create(cls, config: S3Config) -> S3Backend:
        """A client for the bucket, checked (it exists and the credentials reach it), with
        unfinished uploads of a crashed earlier run aborted."""
        cfg = AioConfig(
            region_name=config.region or "us-east-1",
            s3={"addressing_style": "path" if config.force_path_style else "auto"},
            # Only the checksums S3 requires: the newer defaults (CRC32 trailers on every
            # upload) are not understood by many S3-compatible services.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
        )
        stack = AsyncExitStack()
        creds: dict[str, str] = {}
        if config.access_key_id:
            creds = {
                "aws_access_key_id": config.access_key_id,
                "aws_secret_access_key": config.secret_access_key or "",
            }
        client = await stack.enter_async_context(
            get_session().create_client(
                "s3", endpoint_url=config.endpoint or None, config=cfg, **creds
            )
        )
        backend = cls(config, client, stack)
        try:
            with _s3(f"HeadBucket {config.bucket!r}"):
                await client.head_bucket(Bucket=config.bucket)
            await backend.abort_stale_uploads(_STALE_UPLOAD)
        except BaseException:
            await stack.aclose()
            raise
        return backend

    def _key(self, key: str) -> str:
        return self.prefix + key

    async def _get(self, key: str, range_: str | None = None) -> Any:
        kw: dict[str, str] = {"Range": range_} if range_ else {}
        try:
            resp = await self._client.get_object(Bucket=self.bucket, Key=self._key(key), **kw)
        except ClientError as e:
            if _code(e) in _MISSING:
                raise BlobMissing(key) from e
            raise S3Error(f"S3 GetObject failed: {_code(e)}") from e
        except (BotoCoreError, aiohttp.ClientError) as e:
            raise S3Error(f"S3 GetObject failed: {type(e).__name__}") from e
        return resp

    async def put(
        self, key: str, chunks: AsyncIterable[bytes], *, max_size: int | None = None
    ) -> Stored:
        full = self._key(key)
        buf: list[bytes] = []
        buffered = 0
        size = 0
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        sending: asyncio.Task[dict[str, Any]] | None = None
        try:
            async for chunk in chunks:
                size += len(chunk)
                if max_size is not None and size > max_size:
                    raise TooLarge
                buf.append(chunk)
                buffered += len(chunk)
                # A part is cut only once a byte past it has arrived, and at exactly
                # `part_size` bytes: the parts (so the ETag) depend on the bytes alone, never
                # on how the network chunked them, and a body of at most one part goes up in
                # one PutObject — as @aws-sdk/lib-storage's Upload cuts them for Supabase.
                while buffered > self.part_size:
                    if upload_id is None:
                        with _s3("CreateMultipartUpload"):
                            r = await self._client.create_multipart_upload(
                                Bucket=self.bucket, Key=full
                            )
                        upload_id = str(r["UploadId"])
                    if sending is not None:
                        parts.append(await sending)
                        sending = None
                    # This part goes up while the next one arrives: network in and out
                    # overlap, and at most two parts (and a chunk) are ever held.
                    joined = b"".join(buf)
                    data, rest = joined[: self.part_size], joined[self.part_size :]
                    del joined
                    buf, buffered = [rest], len(rest)
                    sending = asyncio.create_task(
                        self._upload_part(full, upload_id, len(parts) + 1, data)
                    )
                    del data, rest
            if upload_id is None:
                with _s3("PutObject"):
                    r = await self._client.put_object(
                        Bucket=self.bucket, Key=full, Body=b"".join(buf)
                    )
                return Stored(size, r.get("ETag") or await self._etag(full))
            if sending is not None:
                parts.append(await sending)
                sending = None
            if buf:
                parts.append(
                    await self._upload_part(full, upload_id, len(parts) + 1, b"".join(buf))
                )
                buf = []
            with _s3("CompleteMultipartUpload"):
                done = await self._client.complete_multipart_upload(
                    Bucket=self.bucket, Key=full, UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )  # fmt: skip
        except BaseException:
            if sending is not None:
                sending.cancel()
                with contextlib.suppress(BaseException):
                    await sending
            if upload_id is not None:
                await self._abort(full, upload_id)
            raise
        return Stored(size, done.get("ETag") or await self._etag(full))

    async def _etag(self, full: str) -> str | None:
        """The object's ETag from HeadObject, for a service that left it out of its answer
        to the write (as Supabase reads it after a multipart upload)."""
        with _s3("HeadObject"):
            r = await self._client.head_object(Bucket=self.bucket, Key=full)
        etag = r.get("ETag")
        return str(etag) if etag else None

    async def _upload_part(self, full: str, upload_id: str, n: int, data: bytes) -> dict[str, Any]:
        with _s3("UploadPart"):
            r = await self._client.upload_part(
                Bucket=self.bucket, Key=full, UploadId=upload_id, PartNumber=n, Body=data
            )
        return {"ETag": r["ETag"], "PartNumber": n}

    async def _abort(self, full: str, upload_id: str) -> None:
        # Best effort: if S3 is unreachable now, `abort_stale_uploads` at the next start (or
        # the bucket's own lifecycle rule) removes the parts.
        with contextlib.suppress(Exception):
            await self._client.abort_multipart_upload(
                Bucket=self.bucket, Key=full, UploadId=upload_id
            )

    async def abort_stale_uploads(self, older_than: dt.timedelta) -> int:
        """Abort multipart uploads under our prefix started more than `older_than` ago (those
        a crashed process never finished or aborted); how many."""
        cutoff = dt.datetime.now(dt.UTC) - older_than
        stale: list[tuple[str, str]] = []
        with _s3("ListMultipartUploads"):
            pages = self._client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            async for page in pages:
                for u in page.get("Uploads", []):
                    if u["Initiated"] < cutoff:
                        stale.append((u["Key"], u["UploadId"]))
        for full, upload_id in stale:
            await self._abort(full, upload_id)
        return len(stale)

    async def open(self, key: str) -> S3Blob:
        resp = await self._get(key)
        return S3Blob(self, key, int(resp["ContentLength"]), resp["Body"])

    async def stat(self, key: str) -> Stored | None:
        try:
            r = await self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as e:
            if _code(e) in _MISSING:
                return None
            raise S3Error(f"S3 HeadObject failed: {_code(e)}") from e
        except (BotoCoreError, aiohttp.ClientError) as e:
            raise S3Error(f"S3 HeadObject failed: {type(e).__name__}") from e
        return Stored(int(r["ContentLength"]), r.get("ETag"))

    async def copy(self, src: str, dst: str) -> Stored:
        stored = await self.stat(src)
        if stored is None:
            raise BlobMissing(src)
        if stored.size > MAX_COPY:
            raise S3Error("S3 CopyObject failed: objects over 5 GB cannot be copied")
        try:
            r = await self._client.copy_object(
                Bucket=self.bucket, Key=self._key(dst),
                CopySource={"Bucket": self.bucket, "Key": self._key(src)},
            )  # fmt: skip
        except ClientError as e:
            if _code(e) in _MISSING:  # deleted between the stat and the copy
                raise BlobMissing(src) from e
            raise S3Error(f"S3 CopyObject failed: {_code(e)}") from e
        except (BotoCoreError, aiohttp.ClientError) as e:
            raise S3Error(f"S3 CopyObject failed: {type(e).__name__}") from e
        etag = (r.get("CopyObjectResult") or {}).get("ETag")
        return Stored(stored.size, str(etag) if etag else None)

    async def delete(self, keys: list[str]) -> None:
        for i in range(0, len(keys), DELETE_BATCH):
            batch = [{"Key": self._key(k)} for k in keys[i : i + DELETE_BATCH]]
            with _s3("DeleteObjects"):
                r = await self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            # Absent keys are not errors in S3 either; anything reported here is real.
            errors = r.get("Errors") or []
            if errors:
                raise S3Error(f"S3 DeleteObjects failed: {errors[0].get('Code')}")

    async def close(self) -> None:
        await self._stack.aclose()
