"""The S3 backend against a real S3-protocol server (moto's, over HTTP): streaming puts (one
PutObject or a multipart upload), reads by range in bounded chunks, copies, deletes in batches,
and nothing left in the bucket — no object, no unfinished upload — by a rejected, failed or
cancelled put."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections.abc import AsyncIterator

import pytest

from supalite.storage.backends import BlobMissing, TooLarge
from supalite.storage.backends.s3 import CHUNK, MIN_PART_SIZE, S3Backend, S3Config, S3Error
from tests.storage.s3server import ACCESS_KEY, REGION, SECRET_KEY, MotoS3, moto_s3  # noqa: F401

MiB = 1024 * 1024
PREFIX = "blobs/"


def config(moto: MotoS3, bucket: str, **kw: object) -> S3Config:
    base: dict[str, object] = dict(
        bucket=bucket, endpoint=moto.endpoint, region=REGION, force_path_style=True,
        access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY, prefix="blobs",
        part_size=MIN_PART_SIZE,
    )  # fmt: skip
    base.update(kw)
    return S3Config(**base)  # type: ignore[arg-type]


async def gen(
    parts: list[bytes], pulled: list[int] | None = None, fail_at: int | None = None
) -> AsyncIterator[bytes]:
    for i, p in enumerate(parts):
        if pulled is not None:
            pulled.append(i)
        if i == fail_at:
            raise RuntimeError("the client went away")
        yield p


def pattern(n: int) -> bytes:
    return (bytes(range(256)) * (n // 256 + 1))[:n]


async def read_all(b: S3Backend, key: str, start: int = 0, end: int | None = None) -> bytes:
    blob = await b.open(key)
    return b"".join([c async for c in blob.read(start, end)])


def test_put_read_range_copy_delete(moto_s3: MotoS3) -> None:  # noqa: F811
    bucket = moto_s3.new_bucket()

    async def run() -> None:
        b = await S3Backend.create(config(moto_s3, bucket))
        try:
            small = b"hello world"
            assert (await b.put("small", gen([small[:5], small[5:]]))).size == len(small)
            # Over two parts: a multipart upload of 5 + 5 + 2.5 MiB, sent from 1 MiB chunks.
            big = pattern(12 * MiB + MiB // 2)
            chunks = [big[i : i + MiB] for i in range(0, len(big), MiB)]
            assert (await b.put("big", gen(chunks))).size == len(big)
            assert (await b.put("empty", gen([]))).size == 0
            assert moto_s3.everything(bucket) == ["blobs/big", "blobs/empty", "blobs/small"]

            assert await read_all(b, "small") == small
            assert await read_all(b, "big") == big
            assert await read_all(b, "empty") == b""
            blob = await b.open("big")
            assert blob.size == len(big)
            sizes = [len(c) async for c in blob.read()]
            assert sum(sizes) == len(big) and max(sizes) <= CHUNK  # bounded, whatever the size
            # Ranges: inside one chunk, across chunks and parts, an open end, past the end.
            assert await read_all(b, "small", 6, 10) == b"world"
            lo, hi = 5 * MiB - 7, 5 * MiB + CHUNK + 9
            assert await read_all(b, "big", lo, hi) == big[lo : hi + 1]
            assert await read_all(b, "big", len(big) - 3) == big[-3:]
            assert await read_all(b, "small", 6, 10_000) == b"world"
            # Opened and closed unread: nothing to read, no error.
            await (await b.open("big")).close()

            stat = await b.stat("big")
            assert stat is not None and stat.size == len(big)
            assert await b.stat("nope") is None
            assert (await b.copy("big", "big2")).size == len(big)
            assert await read_all(b, "big2") == big
            with pytest.raises(BlobMissing):
                await b.open("nope")
            with pytest.raises(BlobMissing):
                await b.copy("nope", "x")
            assert "blobs/x" not in moto_s3.keys(bucket)

            await b.delete(["big", "never-there"])
            assert await b.stat("big") is None
            assert await read_all(b, "big2") == big  # the copy is its own object
            await b.delete(["big2", "small", "empty"])
            await b.delete([])
            assert moto_s3.everything(bucket) == []
        finally:
            await b.close()

    asyncio.run(run())


def s3_etag(parts: list[bytes]) -> str:
    """S3's ETag: the MD5 of the bytes for one PutObject; for a multipart upload the MD5 of
    the parts' MD5s, then `-<parts>`."""
    if len(parts) == 1:
        return '"' + hashlib.md5(parts[0]).hexdigest() + '"'
    digests = b"".join(hashlib.md5(p).digest() for p in parts)
    return f'"{hashlib.md5(digests).hexdigest()}-{len(parts)}"'


def test_etag_is_the_one_s3_answers(moto_s3: MotoS3) -> None:  # noqa: F811
    """As Supabase's S3 backend keeps it: PutObject's ETag (the MD5), the multipart one (not
    an MD5 of the bytes), CopyObject's; each the ETag S3 itself reports for the object."""
    bucket = moto_s3.new_bucket()
    s3 = moto_s3.client()

    def head_etag(key: str) -> str:
        return str(s3.head_object(Bucket=bucket, Key=PREFIX + key)["ETag"])

    async def run() -> None:
        b = await S3Backend.create(config(moto_s3, bucket))
        try:
            small = b"hello etag"
            stored = await b.put("small", gen([small[:4], small[4:]]))
            assert stored.etag == s3_etag([small]) == head_etag("small")
            big = pattern(11 * MiB)
            chunks = [big[i : i + MiB] for i in range(0, len(big), MiB)]
            stored = await b.put("big", gen(chunks))
            parts = [big[i : i + MIN_PART_SIZE] for i in range(0, len(big), MIN_PART_SIZE)]
            assert len(parts) == 3
            assert stored.etag == s3_etag(parts) == head_etag("big")
            assert stored.etag != s3_etag([big])
            # Parts are cut at exactly part_size whatever the chunks, so the same bytes get the
            # same ETag; a body of exactly one part is one PutObject.
            step = 3 * MiB + 7
            stored = await b.put("odd", gen([big[i : i + step] for i in range(0, len(big), step)]))
            assert stored.etag == s3_etag(parts) == head_etag("odd")
            one = big[:MIN_PART_SIZE]
            stored = await b.put("one", gen([one[: 3 * MiB], one[3 * MiB :]]))
            assert stored.etag == s3_etag([one]) == head_etag("one")
            copied = await b.copy("small", "small2")
            assert copied.etag == s3_etag([small]) == head_etag("small2")
            stat = await b.stat("big")
            assert stat is not None and stat.etag == head_etag("big")
            await b.delete(["small", "big", "small2", "odd", "one"])
        finally:
            await b.close()

    asyncio.run(run())


def test_prefix_keeps_to_its_folder(moto_s3: MotoS3) -> None:  # noqa: F811
    bucket = moto_s3.new_bucket()
    moto_s3.client().put_object(Bucket=bucket, Key="someone-else/k", Body=b"theirs")

    async def run() -> None:
        b = await S3Backend.create(config(moto_s3, bucket, prefix="/tenant/storage/"))
        try:
            await b.put("k", gen([b"ours"]))
            assert moto_s3.keys(bucket) == ["someone-else/k", "tenant/storage/k"]
            await b.delete(["k"])
            assert moto_s3.keys(bucket) == ["someone-else/k"]
        finally:
            await b.close()

    asyncio.run(run())


@pytest.mark.parametrize(("total", "limit"), [(11, 10), (20 * MiB, 12 * MiB)])
def test_too_large_stops_pulling_and_leaves_nothing(
    moto_s3: MotoS3,  # noqa: F811
    total: int,
    limit: int,
) -> None:
    """Small (would be one PutObject) and large (a multipart upload already under way)."""
    bucket = moto_s3.new_bucket()
    step = MiB if total > MiB else 1
    parts = [b"x" * step] * (total // step)

    async def run() -> None:
        b = await S3Backend.create(config(moto_s3, bucket))
        pulled: list[int] = []
        try:
            with pytest.raises(TooLarge):
                await b.put("k", gen(parts, pulled), max_size=limit)
        finally:
            await b.close()
        # Stopped at the first chunk past the limit, not after reading the whole body.
        assert len(pulled) == limit // step + 1

    asyncio.run(run())
    assert moto_s3.everything(bucket) == []


def test_failing_stream_aborts_the_multipart_upload(moto_s3: MotoS3) -> None:  # noqa: F811
    bucket = moto_s3.new_bucket()

    async def run() -> None:
        b = await S3Backend.create(config(moto_s3, bucket))
        try:
            # Two parts sent, then the body fails.
            with pytest.raises(RuntimeError):
                await b.put("k", gen([b"y" * MiB] * 20, fail_at=11))
            # And a body that fails before a part is full (no upload begun).
            with pytest.raises(RuntimeError):
                await b.put("k2", gen([b"y" * MiB] * 3, fail_at=2))
        finally:
            await b.close()

    asyncio.run(run())
    assert moto_s3.everything(bucket) == []


def test_upload_invisible_until_complete_and_cancel_aborts(moto_s3: MotoS3) -> None:  # noqa: F811
    bucket = moto_s3.new_bucket()
    seen: dict[str, list[str]] = {}

    async def run() -> None:
        b = await S3Backend.create(config(moto_s3, bucket))
        paused = asyncio.Event()
        resume = asyncio.Event()

        async def body(pause_after: int, n: int) -> AsyncIterator[bytes]:
            for i in range(n):
                if i == pause_after:
                    paused.set()
                    await resume.wait()
                yield b"z" * MiB

        try:
            # Paused with two parts' worth sent: an upload exists, no object does.
            task = asyncio.create_task(b.put("done", body(11, 14)))
            await paused.wait()
            seen["paused"] = await asyncio.to_thread(moto_s3.everything, bucket)
            resume.set()
            assert (await task).size == 14 * MiB
            seen["complete"] = await asyncio.to_thread(moto_s3.everything, bucket)

            paused.clear()
            resume.clear()
            task = asyncio.create_task(b.put("cancelled", body(11, 14)))
            await paused.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            await b.close()

    asyncio.run(run())
    assert seen["paused"] == ["(unfinished upload) blobs/done"]
    assert seen["complete"] == ["blobs/done"]
    assert moto_s3.everything(bucket) == ["blobs/done"]  # the cancelled one left nothing


def test_delete_more_than_one_batch(moto_s3: MotoS3) -> None:  # noqa: F811
    bucket = moto_s3.new_bucket()
    keys = [f"k{i:04d}" for i in range(1003)]  # DeleteObjects takes at most 1000 per call

    async def run() -> None:
        b = await S3Backend.create(config(moto_s3, bucket))
        try:
            for i in range(0, len(keys), 50):
                await asyncio.gather(*(b.put(k, gen([k.encode()])) for k in keys[i : i + 50]))
            assert len(moto_s3.keys(bucket)) == len(keys)
            await b.delete([*keys, "absent"])
        finally:
            await b.close()

    asyncio.run(run())
    assert moto_s3.everything(bucket) == []


def test_stale_uploads_are_aborted_at_start(moto_s3: MotoS3) -> None:  # noqa: F811
    """A crash mid-upload leaves an unfinished multipart upload; a later start aborts those
    past the grace period, and never touches uploads outside the prefix.  (moto reports every
    upload as initiated on 2010-11-10, so at start all of ours count as old.)"""
    bucket = moto_s3.new_bucket()
    c = moto_s3.client()
    c.create_multipart_upload(Bucket=bucket, Key="blobs/crashed")
    c.create_multipart_upload(Bucket=bucket, Key="elsewhere/theirs")

    async def run() -> None:
        b = await S3Backend.create(config(moto_s3, bucket))
        try:
            assert moto_s3.uploads(bucket) == ["elsewhere/theirs"]
            c.create_multipart_upload(Bucket=bucket, Key="blobs/later")
            # Younger than the grace period (a century here): kept.
            assert await b.abort_stale_uploads(dt.timedelta(days=36500)) == 0
            assert moto_s3.uploads(bucket) == ["blobs/later", "elsewhere/theirs"]
            assert await b.abort_stale_uploads(dt.timedelta(0)) == 1
        finally:
            await b.close()

    asyncio.run(run())
    assert moto_s3.uploads(bucket) == ["elsewhere/theirs"]


def test_unreachable_or_missing_bucket_is_an_s3_error_without_secrets(
    moto_s3: MotoS3,  # noqa: F811
) -> None:
    async def run() -> list[str]:
        messages = []
        for cfg in (
            config(moto_s3, "no-such-bucket-here"),
            config(moto_s3, "b", endpoint="http://127.0.0.1:9"),  # nothing listens there
        ):
            with pytest.raises(S3Error) as info:
                await S3Backend.create(cfg)
            messages.append(str(info.value))
            assert SECRET_KEY not in repr(cfg)
        return messages

    messages = asyncio.run(run())
    assert "HeadBucket" in messages[0] and "404" in messages[0]
    assert "HeadBucket" in messages[1]
    assert all(SECRET_KEY not in m for m in messages)
