"""TUS resumable uploads (`/storage/v1/upload/resumable`) as Supabase Storage serves them — the
protocol's logic, no HTTP here (`routes.py` parses and renders).

The upload id is Supabase's: base64url of `bucket/object/version`; `Upload-Metadata` carries
`bucketName`, `objectName`, `contentType`, `cacheControl` (seconds) and `metadata` (JSON user
metadata); `x-upsert: true` at creation allows overwriting.  Creation makes the same checks as
a plain upload (`objects.py`), before a byte is taken: the key, the bucket, the type against its
allow-list, `Upload-Length` against its size limit, and RLS (the row is written and rolled back
in the caller's role).

Bytes of an unfinished upload are staged in a file under the data folder (whatever the backend),
appended as they arrive, so memory stays flat.  The upload's state lives in
`_supalite.storage_tus_uploads`, so any process sharing the database and the data folder serves
any request of it and a restart resumes it; the row's offset is the truth (bytes past it, left by
a crash mid-PATCH, are cut off by the next PATCH).  One request appends at a time, holding a
lease on the row.  When the last byte arrives the staged file goes to the backend's `put` and the
object's row commits as a plain upload's does (`objects.commit_upload`, in the caller's role):
the object appears only when complete.  Uploads expire 24 h after creation, as on Supabase; the
hourly sweep removes expired ones with their staged bytes.

Under `/upload/resumable/sign` an upload is authorised as Supabase's signed TUS routes do it: no
JWT, but the token of a signed upload URL (`POST /object/upload/sign/…`) in the `x-signature`
header of every request, verified for the upload's own object as the signed PUT verifies it
(`objects.verify_upload_token`).  The upload then runs as the storage service, owned by whoever
signed the URL and with the token's upsert (RLS was checked when the URL was signed).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import os
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import asyncpg

from supalite.storage import errors as E
from supalite.storage import objects
from supalite.storage import sql as S
from supalite.storage.backends import TooLarge
from supalite.storage.context import Caller, StorageContext
from supalite.storage.names import check_bucket_name, check_key
from supalite.storage.uploads import DEFAULT_MIME, parse_user_metadata

TUS_VERSION = "1.0.0"
# What `@tus/file-store` and `@tus/s3-store` (Supabase's stores) advertise, in their order;
# not `concatenation` (`unsupported_concatenation`).
EXTENSIONS = "creation,creation-with-upload,creation-defer-length,termination,expiration"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
EXPIRY = 24 * 3600  # seconds from creation, as Supabase's default TUS_URL_EXPIRY_MS
LEASE = 60  # seconds a request holds an upload without renewing (a crashed holder's runs out)
RENEW_AFTER = 15  # seconds between renewals while bytes stream
LOCK_WAIT = 10  # seconds a request waits for another one appending to the same upload
READ_CHUNK = 1024 * 1024


class TusError(Exception):
    """A tus-protocol answer: an HTTP status and a plain-text body, as `@tus/server` sends."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(body)
        self.status = status
        self.body = body
        self.headers: dict[str, str] = {}


# `@tus/server`'s own answers (its ERRORS), word for word: tus-js-client shows these bodies.
def not_found() -> TusError:
    return TusError(404, "The file for this url was not found\n")


def gone() -> TusError:
    return TusError(410, "The file for this url no longer exists\n")


def invalid_offset() -> TusError:
    return TusError(409, "Upload-Offset conflict\n")


def max_size_exceeded() -> TusError:
    return TusError(413, "Maximum size exceeded\n")


def size_exceeded() -> TusError:
    return TusError(413, "upload's size exceeded\n")


def invalid_length() -> TusError:
    return TusError(400, "Upload-Length or Upload-Defer-Length header required\n")


def locked() -> TusError:
    return TusError(423, "file currently locked\n")


def unsupported_concatenation() -> TusError:
    # `@tus/server` checks for the extension under a misspelt name ('concatentation'), so no
    # store has it: any `Upload-Concat` is refused, as on Supabase.
    return TusError(
        501,
        "Concatenation extension is not (yet) supported. Disable parallel uploads in the tus "
        "client.\n",
    )


INVALID_METADATA = (
    "Upload-Metadata is invalid. It MUST consist of one or more comma-separated key-value "
    "pairs. The key and value MUST be separated by a space. The key MUST NOT contain spaces and "
    "commas and MUST NOT be empty. The key SHOULD be ASCII encoded and the value MUST be Base64 "
    "encoded. All keys MUST be unique"
)


# ------------------------------------------------------------------------------ ids, metadata


def encode_id(upload_id: str) -> str:
    # Node's Buffer.toString('base64url'): no padding.
    return base64.urlsafe_b64encode(upload_id.encode()).decode().rstrip("=")


def decode_id(token: str) -> str | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        return raw.decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


def parse_metadata(header: str | None) -> dict[str, str | None]:
    """`Upload-Metadata` as tus defines it: `key base64value` pairs, comma-separated."""
    out: dict[str, str | None] = {}
    if header is None:
        return out
    for pair in header.split(","):
        parts = pair.strip().split(" ")
        key = parts[0]
        if not key or len(parts) > 2 or key in out:
            raise TusError(400, INVALID_METADATA)
        if len(parts) == 1 or parts[1] == "":
            out[key] = None
            continue
        try:
            out[key] = base64.b64decode(parts[1], validate=True).decode()
        except (ValueError, binascii.Error, UnicodeDecodeError) as e:
            raise TusError(400, INVALID_METADATA) from e
    return out


@dataclass(frozen=True)
class Access:
    """What authorises a TUS request: the caller its JWT names or, on the signed routes
    (`caller` None), the signed-upload token its `x-signature` header carries."""

    caller: Caller | None
    signature: str | None = None


def _signed_caller(
    ctx: StorageContext, access: Access, bucket_id: str, name: str
) -> tuple[Caller, bool]:
    if not access.signature:
        raise E.invalid_signature("Missing x-signature header")
    return objects.verify_upload_token(ctx, bucket_id, name, access.signature)


def authorize_create(
    ctx: StorageContext, access: Access, metadata_header: str | None, x_upsert: bool
) -> tuple[Caller, bool, bool]:
    """Who creates an upload, whether it may overwrite, and whether RLS is to be checked
    now: the JWT's caller with `x-upsert`, checked at creation; or, signed, the token's
    owner and upsert for the object `Upload-Metadata` names, not checked again."""
    if access.caller is not None:
        return access.caller, x_upsert, True
    if metadata_header is None:
        raise E.invalid_request("Metadata header is required")
    md = parse_metadata(metadata_header)
    bucket_id, name = md.get("bucketName") or "", md.get("objectName") or ""
    caller, upsert = _signed_caller(ctx, access, bucket_id, name)
    return caller, upsert, False


def authorize(ctx: StorageContext, access: Access, url_id: str) -> Caller:
    """Who acts on an existing upload: the JWT's caller; or, signed, the owner of a token
    signed for the upload's own object (the upload id names it)."""
    if access.caller is not None:
        return access.caller
    upload_id = decode_id(url_id)
    if upload_id is None or upload_id.count("/") < 2:
        raise not_found()
    bucket_id, _, rest = upload_id.partition("/")
    name = rest.rpartition("/")[0]
    return _signed_caller(ctx, access, bucket_id, name)[0]


def _cache_control(value: str | None) -> str:
    # Supabase's onCreate: an integer is seconds (max-age), anything else no-cache.
    v = (value or "").strip()
    if v.lstrip("-").isdigit():
        return f"max-age={v}"
    return "no-cache"


# ------------------------------------------------------------------------------ state


@dataclass(frozen=True)
class Upload:
    id: str  # bucket/name/version
    bucket_id: str
    name: str
    version: str
    length: int | None  # None: deferred (creation-defer-length) until a PATCH declares it
    offset: int
    metadata_header: str | None
    mimetype: str
    cache_control: str
    user_metadata: dict[str, Any] | None
    upsert: bool
    role: str
    owner_id: str | None
    done: bool
    leased: bool
    expires_at: datetime
    expired: bool
    lease: str | None = None  # this request's lease, when it holds one

    @classmethod
    def from_record(cls, r: asyncpg.Record, lease: str | None = None) -> Upload:
        um = r["user_metadata"]
        return cls(
            id=r["id"], bucket_id=r["bucket_id"], name=r["name"], version=r["version"],
            length=r["upload_length"], offset=r["upload_offset"],
            metadata_header=r["upload_metadata"], mimetype=r["mimetype"],
            cache_control=r["cache_control"],
            user_metadata=json.loads(um) if isinstance(um, str) else um, upsert=r["upsert"],
            role=r["role"], owner_id=r["owner_id"], done=r["done"], leased=bool(r["leased"]),
            expires_at=r["expires_at"], expired=r["expired"], lease=lease,
        )  # fmt: skip

    @property
    def url_id(self) -> str:
        return encode_id(self.id)


def _staging(ctx: StorageContext, version: str) -> Path:
    # The version is a UUID supalite made (never a client's text), so it is a safe file name.
    assert ctx.tus_dir is not None
    return ctx.tus_dir / version


def _owned_by(up: Upload, caller: Caller) -> bool:
    return up.role == caller.claims.role and up.owner_id == caller.owner


async def _get(ctx: StorageContext, caller: Caller, url_id: str) -> Upload:
    """The upload behind a URL id, if the caller created it and it has not expired.  Someone
    else's upload is not found, as if it did not exist."""
    upload_id = decode_id(url_id)
    if upload_id is None:
        raise not_found()
    async with ctx.admin() as conn:
        r = await conn.fetchrow(S.TUS_GET, upload_id)
    if r is None:
        raise not_found()
    up = Upload.from_record(r)
    if not _owned_by(up, caller):
        raise not_found()
    if up.expired:
        raise gone()
    return up


async def _claim(ctx: StorageContext, caller: Caller, url_id: str) -> Upload:
    """The upload, with this request's lease on it: waits (a while) for a request appending to
    it now — such as one whose client went away and that is still keeping what arrived."""
    up = await _get(ctx, caller, url_id)
    token = uuid.uuid4().hex
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        async with ctx.admin() as conn:
            r = await conn.fetchrow(S.TUS_CLAIM, up.id, token, LEASE)
        if r is not None:
            return Upload.from_record(r, lease=token)
        if time.monotonic() > deadline:
            raise locked()
        await asyncio.sleep(0.05)
        up = await _get(ctx, caller, url_id)  # still there?


async def _release(ctx: StorageContext, up: Upload, offset: int, *, done: bool = False) -> None:
    async with ctx.admin() as conn:
        await conn.execute(S.TUS_RELEASE, up.id, up.lease, offset, done)


async def _forget(ctx: StorageContext, up: Upload) -> None:
    """Remove the upload and its staged bytes (it holds the lease)."""
    async with ctx.admin() as conn:
        await conn.execute(S.TUS_DELETE, up.id, up.lease)
    await asyncio.to_thread(_staging(ctx, up.version).unlink, True)


# ------------------------------------------------------------------------------ operations


async def create(
    ctx: StorageContext,
    caller: Caller,
    *,
    length: int | None,
    metadata_header: str | None,
    upsert: bool,
    check: bool = True,
) -> Upload:
    """A new upload, checked as a plain upload is (RLS only with `check`: a signed upload's
    was checked when its URL was signed); it comes back holding the lease, so the creating
    request may carry the first bytes (creation-with-upload).  `length` None: deferred, and
    the size limit is checked as the bytes and the length come."""
    if metadata_header is None:
        raise E.invalid_request("Metadata header is required")
    md = parse_metadata(metadata_header)
    bucket_id = check_bucket_name(md.get("bucketName") or "")
    name = check_key(md.get("objectName") or "")
    mimetype = (md.get("contentType") or "").strip() or DEFAULT_MIME
    user_metadata = parse_user_metadata(md.get("metadata"), b64=False)
    bucket = await objects.bucket_limits(ctx, bucket_id)
    max_size = objects.type_and_size_limit(ctx, bucket, name, mimetype)
    if length is not None and length > max_size:
        raise max_size_exceeded()
    if check:
        await objects.check_can_write(
            ctx, caller, bucket_id, name, upsert=upsert,
            metadata={"mimetype": mimetype, "contentLength": length},
            user_metadata=user_metadata,
        )  # fmt: skip
    version = str(uuid.uuid4())
    token = uuid.uuid4().hex
    path = _staging(ctx, version)
    await asyncio.to_thread(_new_file, path)
    try:
        async with ctx.admin() as conn:
            r = await conn.fetchrow(
                S.TUS_CREATE, f"{bucket_id}/{name}/{version}", bucket_id, name, version, length,
                metadata_header, mimetype, _cache_control(md.get("cacheControl")),
                json.dumps(user_metadata) if user_metadata is not None else None, upsert,
                caller.claims.role, caller.owner, token, LEASE, EXPIRY,
            )  # fmt: skip
    except BaseException:
        await asyncio.to_thread(path.unlink, True)
        raise
    return Upload.from_record(r, lease=token)


def _new_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(exist_ok=False)


async def info(ctx: StorageContext, caller: Caller, url_id: str) -> Upload:
    """HEAD: the upload's offset.  A request appending to it now is waited for (a while), so
    the offset answered is what that request kept — what a client resuming after a dropped
    connection must send next."""
    deadline = time.monotonic() + LOCK_WAIT
    up = await _get(ctx, caller, url_id)
    while up.leased and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        up = await _get(ctx, caller, url_id)
    return up


async def claim(ctx: StorageContext, caller: Caller, url_id: str) -> Upload:
    """PATCH: the upload, held by this request until `append` releases it."""
    return await _claim(ctx, caller, url_id)


async def append(
    ctx: StorageContext,
    caller: Caller,
    up: Upload,
    offset: int,
    declared: int | None,
    chunks: AsyncIterable[bytes],
    *,
    length: int | None = None,
) -> Upload:
    """Append the body to an upload this request holds the lease of, and release it.  What
    arrived is kept even when the client goes away mid-body (that is the point of resuming);
    a body past the upload's length is refused whole.  `length`: the `Upload-Length` a PATCH
    declares for a deferred upload (creation-defer-length).  The last byte stores the object."""
    try:
        if offset != up.offset:
            raise invalid_offset()
        if up.done:
            await _release(ctx, up, up.offset, done=True)
            return up
        # The bucket's limit as it is now (it may have been lowered since creation).
        bucket = await objects.bucket_limits(ctx, up.bucket_id)
        max_size = objects.type_and_size_limit(ctx, bucket, up.name, up.mimetype)
        if length is not None:
            up = await _declare_length(ctx, up, length, max_size)
        if up.length is None:
            # Still deferred: the bytes may go up to the limit (`@tus/server`'s rule).
            if declared is not None and offset + declared > max_size:
                raise size_exceeded()
        elif up.length > max_size:
            raise max_size_exceeded()
        elif declared is not None and offset + declared > up.length:
            raise size_exceeded()
    except BaseException:
        await _release(ctx, up, up.offset)
        raise
    written = await _write(ctx, up, offset, chunks, max_size)
    if up.length is None or written < up.length:
        await _release(ctx, up, written)
        return _with(up, offset=written)
    return await _finish(ctx, caller, _with(up, offset=written))


async def _declare_length(ctx: StorageContext, up: Upload, length: int, max_size: int) -> Upload:
    """A deferred upload's length, as `@tus/server`'s PATCH takes it: once, not below what
    arrived, within the limit; recorded before any byte of the request is written."""
    if up.length is not None or length < up.offset:
        raise invalid_length()
    if length > max_size:
        raise max_size_exceeded()
    async with ctx.admin() as conn:
        await conn.execute(S.TUS_DECLARE_LENGTH, up.id, up.lease, length)
    return _with(up, length=length)


async def _write(
    ctx: StorageContext, up: Upload, offset: int, chunks: AsyncIterable[bytes], max_size: int
) -> int:
    """Append to the staged file from `offset` (whatever lies past it is cut off first); the
    new offset.  A body past the upload's length (a deferred one's: past `max_size`) is
    refused whole.  On a failure other than a refusal, what was written is kept (and
    released)."""
    path = _staging(ctx, up.version)
    try:
        f = await asyncio.to_thread(open, path, "r+b")
    except FileNotFoundError:
        f = None
    if f is None or not await asyncio.to_thread(_seek_end, f, offset):
        # The row outlived its staged bytes (the data folder was cleared or lost writes): the
        # upload cannot go on; the client starts again.
        if f is not None:
            f.close()
        await _forget(ctx, up)
        raise gone()
    written = offset
    renewed = time.monotonic()
    try:
        async for chunk in chunks:
            if up.length is None and written + len(chunk) > max_size:
                raise max_size_exceeded()
            if up.length is not None and written + len(chunk) > up.length:
                raise size_exceeded()
            # Written through at once: the staged file shows what arrived, and nothing waits
            # in memory for a client that goes away.
            await asyncio.to_thread(_append, f, chunk)
            written += len(chunk)
            if time.monotonic() - renewed > RENEW_AFTER:
                async with ctx.admin() as conn:
                    await conn.execute(S.TUS_RENEW, up.id, up.lease, LEASE)
                renewed = time.monotonic()
        await asyncio.to_thread(_sync_close, f)
    except TusError:
        # A refused body is refused whole: back to where it started.
        with contextlib.suppress(OSError):
            await asyncio.to_thread(_truncate_close, f, offset)
        await _release(ctx, up, offset)
        raise
    except BaseException:
        # The client went away (or the disk failed): keep what is safely written.
        kept = offset
        with contextlib.suppress(OSError):
            kept = await asyncio.to_thread(_sync_close, f)
        await _release(ctx, up, max(min(kept, written), offset))
        raise
    return written


def _seek_end(f: BinaryIO, offset: int) -> bool:
    """Position at `offset`, cutting off what lies past it; False if the file is shorter."""
    if os.fstat(f.fileno()).st_size < offset:
        return False
    f.truncate(offset)
    f.seek(offset)
    return True


def _append(f: BinaryIO, chunk: bytes) -> None:
    f.write(chunk)
    f.flush()


def _sync_close(f: BinaryIO) -> int:
    """fsync and close (before the offset is recorded, so the row never runs ahead of the
    bytes); the file's size."""
    if f.closed:
        return 0
    f.flush()
    os.fsync(f.fileno())
    size = os.fstat(f.fileno()).st_size
    f.close()
    return size


def _truncate_close(f: BinaryIO, offset: int) -> None:
    if not f.closed:
        f.truncate(offset)
        f.close()


async def _read_staged(path: Path) -> AsyncIterator[bytes]:
    f = await asyncio.to_thread(open, path, "rb")
    try:
        while data := await asyncio.to_thread(f.read, READ_CHUNK):
            yield data
    finally:
        f.close()


async def _finish(ctx: StorageContext, caller: Caller, up: Upload) -> Upload:
    """All bytes are staged: store them through the backend and commit the object's row as a
    plain upload does.  A refused commit (RLS, an object created meanwhile without upsert)
    ends the upload, leaving nothing; a failing backend keeps the staged bytes for a retry."""
    size = up.offset  # == its length: only a complete upload is finished
    path = _staging(ctx, up.version)
    try:
        await ctx.register_blob(up.version)
        stored = await ctx.backend.put(up.version, _read_staged(path), max_size=size)
    except BaseException as e:
        await ctx.delete_blobs([up.version])
        await _release(ctx, up, size)
        if isinstance(e, TooLarge):
            raise size_exceeded() from e
        raise
    try:
        await objects.commit_upload(
            ctx, caller, up.bucket_id, up.name, version=up.version, size=size,
            etag=stored.etag, mimetype=up.mimetype, cache_control=up.cache_control,
            user_metadata=up.user_metadata, upsert=up.upsert,
        )  # fmt: skip
    except E.StorageError:
        await _forget(ctx, up)
        raise
    except BaseException:
        await _release(ctx, up, size)
        raise
    # Kept (without its bytes) until it expires, so a HEAD still answers "complete".
    await _release(ctx, up, size, done=True)
    await asyncio.to_thread(path.unlink, True)
    return _with(up, offset=size, done=True)


def _with(up: Upload, **changes: Any) -> Upload:
    fields = {**up.__dict__, **changes}
    return Upload(**fields)


async def terminate(ctx: StorageContext, caller: Caller, url_id: str) -> None:
    """DELETE: drop an unfinished upload and its bytes (a finished one stays, as Supabase
    disables termination of finished uploads)."""
    up = await _claim(ctx, caller, url_id)
    if up.done:
        await _release(ctx, up, up.offset, done=True)
        raise TusError(400, "Cannot terminate an already completed upload")
    await _forget(ctx, up)


async def sweep_expired(ctx: StorageContext, batch: int = 1000) -> int:
    """Remove uploads past their expiry and their staged bytes; how many."""
    removed = 0
    while True:
        async with ctx.admin() as conn:
            rows = await conn.fetch(S.TUS_EXPIRED, batch)
        for r in rows:
            await asyncio.to_thread(_staging(ctx, r["version"]).unlink, True)
        removed += len(rows)
        if len(rows) < batch:
            return removed
