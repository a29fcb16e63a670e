"""The disk backend and the name rules, on a real file system: atomic writes, nothing left
by a rejected or failed write, streaming reads by range, copies, deletes."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from supalite.storage import errors as E
from supalite.storage.backends import BlobMissing, TooLarge
from supalite.storage.backends.disk import CHUNK, DiskBackend, EtagAlgorithm, _js_hex, mtime_etag
from supalite.storage.heap import keep_buffers
from supalite.storage.names import is_valid_bucket_name, is_valid_key, mime_allowed, parse_size
from supalite.storage.objects import parse_range


def files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


async def gen(parts: list[bytes], pulled: list[int] | None = None) -> AsyncIterator[bytes]:
    for i, p in enumerate(parts):
        if pulled is not None:
            pulled.append(i)
        yield p


def test_put_read_copy_delete(tmp_path: Path) -> None:
    async def run() -> None:
        b = DiskBackend(tmp_path)
        data = bytes(range(256)) * 9000  # > 2 chunks
        stored = await b.put("k1", gen([data[:1000], data[1000:]]))
        assert stored.size == len(data)
        blob = await b.open("k1")
        assert blob.size == len(data)
        assert b"".join([c async for c in blob.read()]) == data
        blob = await b.open("k1")
        assert b"".join([c async for c in blob.read(5, 5 + CHUNK + 10)]) == data[5 : 5 + CHUNK + 11]
        chunks = [c async for c in (await b.open("k1")).read()]
        assert max(len(c) for c in chunks) <= CHUNK  # bounded, whatever the size
        assert (await b.copy("k1", "k2")).size == len(data)
        await b.delete(["k1"])
        assert await b.stat("k1") is None
        assert b"".join([c async for c in (await b.open("k2")).read()]) == data
        with pytest.raises(BlobMissing):
            await b.open("k1")
        with pytest.raises(BlobMissing):
            await b.copy("k1", "k3")
        await b.delete(["k2", "never-there"])
        assert files(tmp_path) == []

    asyncio.run(run())


def test_too_large_stops_pulling_and_leaves_nothing(tmp_path: Path) -> None:
    async def run() -> None:
        b = DiskBackend(tmp_path)
        pulled: list[int] = []
        with pytest.raises(TooLarge):
            await b.put("big", gen([b"x" * 1000] * 100, pulled), max_size=2500)
        assert len(pulled) == 3  # stopped at the chunk that crossed the limit
        assert files(tmp_path) == []
        assert (await b.put("ok", gen([b"x" * 2500]), max_size=2500)).size == 2500

    asyncio.run(run())


@pytest.mark.parametrize("algorithm", ["md5", "mtime"])
def test_failed_or_cancelled_stream_leaves_nothing(
    tmp_path: Path, algorithm: EtagAlgorithm
) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"a" * (3 * CHUNK)
        raise ConnectionResetError

    async def slow() -> AsyncIterator[bytes]:
        yield b"b" * 100
        await asyncio.sleep(60)
        yield b"never"

    async def run() -> None:
        b = DiskBackend(tmp_path, etag_algorithm=algorithm)
        with pytest.raises(ConnectionResetError):
            await b.put("k", broken())
        task = asyncio.create_task(b.put("k", slow()))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert files(tmp_path) == []
        assert await b.stat("k") is None

    asyncio.run(run())


@pytest.mark.parametrize("algorithm", ["md5", "mtime"])
@pytest.mark.parametrize("size", [0, 10, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7])
def test_every_size_is_stored_whole(tmp_path: Path, size: int, algorithm: EtagAlgorithm) -> None:
    """Below a chunk the file is written in one go; above, chunk by chunk while more arrives:
    either way the blob is the body, its ETag made by the backend's algorithm, and nothing else
    is left in the root."""

    async def run() -> None:
        b = DiskBackend(tmp_path, etag_algorithm=algorithm)
        data = bytes(i % 251 for i in range(size))
        pieces = [data[i : i + 65536] for i in range(0, size, 65536)]
        stored = await b.put("k", gen(pieces))
        assert stored.size == size
        if algorithm == "md5":
            # S3's ETag for one part, as Supabase's file backend makes it: MD5, quoted.
            assert stored.etag == '"' + hashlib.md5(data).hexdigest() + '"'
        else:
            # Supabase's other choice: the stored file's mtime in ms and its size, in hex.
            assert stored.etag == mtime_etag(os.stat(b.path("k")))
            assert re.fullmatch(rf'"[0-9a-f]+(\.[0-9a-f]+)?-{size:x}"', stored.etag or "")
        assert files(tmp_path) == [b.path("k")]
        blob = await b.open("k")
        assert b"".join([c async for c in blob.read()]) == data
        if size > 2:
            blob = await b.open("k")
            assert b"".join([c async for c in blob.read(1, size - 2)]) == data[1:-1]

    asyncio.run(run())


def test_mtime_etag_is_written_as_node_writes_it() -> None:
    """Supabase computes it in Node as `mtimeMs.toString(16)`: the expected strings are what
    Node 20 printed for these numbers (fractions rounded half to even at the double's last
    digit, integers without a point)."""
    printed_by_node = {
        1700000000 * 1000 + 0 / 1e6: "18bcfe56800",
        1763712345 * 1000 + 987654321 / 1e6: "19aa572a783.a78",
        1763712345987.6543: "19aa572a783.a78",
        0.1: "0.1999999999999a",
        1 / 3: "0.55555555555554",
        2.5: "2.8",
        15.96875: "f.f8",
        255.99999999999997: "ff.fffffffffff8",
        0.9999999999999999: "0.fffffffffffff8",
        1e-7: "0.000001ad7f29abcaf48",
    }
    for value, text in printed_by_node.items():
        assert _js_hex(value) == text, value


def test_mtime_etag_follows_the_file_and_copies_share_it(tmp_path: Path) -> None:
    async def run() -> None:
        b = DiskBackend(tmp_path, etag_algorithm="mtime")
        stored = await b.put("k", gen([b"x" * 3000]))
        st = os.stat(b.path("k"))
        sec, nsec = divmod(st.st_mtime_ns, 1_000_000_000)
        assert stored.etag == f'"{_js_hex(sec * 1000 + nsec / 1e6)}-bb8"'
        # A copy is a hard link: the same bytes, the same mtime, so the same ETag — which
        # objects.copy takes from the source's row anyway.
        await b.copy("k", "k2")
        assert mtime_etag(os.stat(b.path("k2"))) == stored.etag
        with pytest.raises(ValueError, match="md5, mtime"):
            DiskBackend(tmp_path, etag_algorithm="sha1")  # type: ignore[arg-type]

    asyncio.run(run())


def test_heap_keeps_request_buffers() -> None:
    """On glibc (the platform the suite runs on) the thresholds are set; see heap.py."""
    assert keep_buffers() is True


def test_hostile_keys_stay_inside_the_root(tmp_path: Path) -> None:
    async def run() -> None:
        b = DiskBackend(tmp_path / "root")
        for key in ("../../escape", "/etc/passwd", "a\x00b", "..", "x" * 5000):
            await b.put(key, gen([b"1"]))
            assert b.path(key).resolve().is_relative_to((tmp_path / "root").resolve())
        assert not (tmp_path / "escape").exists()

    asyncio.run(run())


def test_stale_temporary_files_are_swept(tmp_path: Path) -> None:
    import os

    DiskBackend(tmp_path)
    stale = tmp_path / ".tmp" / "old.part"
    stale.write_bytes(b"x")
    os.utime(stale, (1, 1))
    fresh = tmp_path / ".tmp" / "new.part"
    fresh.write_bytes(b"x")
    DiskBackend(tmp_path)
    assert not stale.exists() and fresh.exists()


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        ("folder/cat.png", True), ("a b/c (1).txt", True), ("x!*'();:@&=+$,?-_.txt", True),
        ("", False), ("../x", False), ("a/../b", False), ("a/./b", False), (".", False),
        ("/abs", False), ("a\x00b", False), ("é", False), ("a\\b", False), ("x" * 1024, True),
        ("x" * 1025, False), ("a{b}", False), ("a#b", False), ("a%b", False),
    ],
)  # fmt: skip
def test_key_rules(key: str, ok: bool) -> None:
    assert is_valid_key(key) is ok


def test_bucket_name_rules() -> None:
    assert is_valid_bucket_name("avatars") and is_valid_bucket_name("my bucket.1")
    for bad in ("", "a/b", "x" * 101, ".", "..", "é", "a\nb"):
        assert not is_valid_bucket_name(bad)


def test_mime_rules() -> None:
    assert mime_allowed("image/png", ["image/*"])
    assert mime_allowed("IMAGE/PNG", ["image/png"])
    assert mime_allowed("text/plain;charset=UTF-8", ["text/plain"])
    assert not mime_allowed("image/png", ["image/jpeg", "text/*"])
    assert not mime_allowed("imagepng", ["image/*"])


def test_sizes_and_ranges() -> None:
    assert parse_size("20MB") == 20_000_000 and parse_size("50MiB") == 50 * 1024 * 1024
    assert parse_size(1024) == 1024 and parse_size("3B") == 3 and parse_size(None) is None
    for bad in ("lots", "-1", True, "1TB"):
        with pytest.raises(E.StorageError):
            parse_size(bad)
    assert parse_range(None, 10) is None
    assert parse_range("bytes=0-0", 10) == (0, 0)
    assert parse_range("bytes=5-", 10) == (5, 9)
    assert parse_range("bytes=-3", 10) == (7, 9)
    assert parse_range("bytes=2-100", 10) == (2, 9)
    assert parse_range("bytes=0-1,4-5", 10) is None  # multi-ranges: served whole
    for bad in ("bytes=10-", "bytes=5-2", "bytes=x-y", "bytes=-0"):
        with pytest.raises(E.StorageError):
            parse_range(bad, 10)
