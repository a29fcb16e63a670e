"""Blobs as files under the data folder: `<root>/blobs/ab/cd/<sha256 of key>`.

Keys never become path components as given — the file name is a hash of the key — so no key,
however hostile, can name a path outside the root.  Writes go to `<root>/.tmp/` (same file
system) and are renamed into place once complete; a failed or abandoned write removes its
temporary file.  File I/O runs in worker threads in chunks of `CHUNK` bytes, so the event loop
never blocks on the disk and memory stays bounded whatever the object size.

A blob's ETag is made as Supabase's file backend makes it, by its `STORAGE_FILE_ETAG_ALGORITHM`:
`md5` (the default) is S3's ETag for a single-part object, the MD5 of the bytes, quoted, which
`put` computes in the thread that writes each chunk (hashlib releases the GIL), so it costs
neither a second read of the file nor time on the event loop — but it is most of an upload's
CPU (1.4 ms per MB, the write 0.3); `mtime` is `"<mtime in ms>-<size>"` in hex, as Node prints
them, from one `stat` of the stored file.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO, Literal

from supalite.storage.backends import BlobMissing, Stored, TooLarge

CHUNK = 1024 * 1024
_STALE_TMP = 24 * 3600  # seconds: older temporary files are leftovers of a crash

EtagAlgorithm = Literal["md5", "mtime"]
ETAG_ALGORITHMS: tuple[EtagAlgorithm, ...] = ("md5", "mtime")  # Supabase's; md5 its default


def _js_hex(value: float) -> str:
    """`value.toString(16)` as V8 writes a non-negative double (DoubleToRadixCString): the
    integer part, then as many hex digits of the fraction as the double's precision holds,
    the last one rounded half to even."""
    integer = math.floor(value)
    fraction = value - integer
    delta = max(0.5 * (math.nextafter(value, math.inf) - value), math.nextafter(0.0, 1.0))
    digits: list[int] = []
    while fraction >= delta:
        fraction *= 16
        delta *= 16
        digit = int(fraction)
        digits.append(digit)
        fraction -= digit
        if (fraction > 0.5 or (fraction == 0.5 and digit & 1)) and fraction + delta > 1:
            # Round up: carry through the trailing f digits, into the integer part if all are.
            while digits and digits[-1] == 15:
                digits.pop()
            if digits:
                digits[-1] += 1
            else:
                integer += 1
            break
    head = format(int(integer), "x")
    return head + "." + "".join(format(d, "x") for d in digits) if digits else head


def mtime_etag(st: os.stat_result) -> str:
    """Supabase's `mtime` ETag of a file: `"<mtimeMs.toString(16)>-<size.toString(16)>"`,
    with Node's `mtimeMs` (seconds * 1000 + nanoseconds / 1e6, in doubles)."""
    sec, nsec = divmod(st.st_mtime_ns, 1_000_000_000)
    return f'"{_js_hex(sec * 1000 + nsec / 1e6)}-{st.st_size:x}"'


class DiskBlob:
    def __init__(self, f: BinaryIO, size: int) -> None:
        self._f = f
        self.size = size

    def _pread(self, n: int, offset: int) -> bytes:
        # Positioned reads: no seek, so one thread hop per chunk and no shared file offset.
        return os.pread(self._f.fileno(), n, offset)

    async def read(self, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        last = self.size - 1 if end is None else min(end, self.size - 1)
        pos = start
        ahead: asyncio.Future[bytes] | None = None
        try:
            if pos <= last:
                ahead = asyncio.ensure_future(
                    asyncio.to_thread(self._pread, min(CHUNK, last - pos + 1), pos)
                )
            while ahead is not None:
                data = await ahead
                ahead = None
                if not data:
                    break
                pos += len(data)
                if pos <= last:
                    # Read the next chunk while this one is being sent: disk and network
                    # overlap, and at most two chunks are ever held.
                    ahead = asyncio.ensure_future(
                        asyncio.to_thread(self._pread, min(CHUNK, last - pos + 1), pos)
                    )
                yield data
        finally:
            if ahead is not None:
                with contextlib.suppress(BaseException):
                    await ahead  # never close the file under a read still running
            await self.close()

    async def close(self) -> None:
        if not self._f.closed:
            self._f.close()


class DiskBackend:
    def __init__(self, root: Path, *, etag_algorithm: EtagAlgorithm = "md5") -> None:
        if etag_algorithm not in ETAG_ALGORITHMS:
            raise ValueError(f"etag algorithm must be one of {', '.join(ETAG_ALGORITHMS)}")
        self.etag_algorithm = etag_algorithm
        self.root = root
        self.blobs = root / "blobs"
        self.tmp = root / ".tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.blobs.mkdir(parents=True, exist_ok=True)
        self._sweep_tmp()

    def _sweep_tmp(self) -> None:
        cutoff = time.time() - _STALE_TMP
        for p in self.tmp.iterdir():
            try:
                if p.stat().st_mtime < cutoff:
                    p.unlink()
            except OSError:
                pass

    def path(self, key: str) -> Path:
        h = hashlib.sha256(key.encode()).hexdigest()
        return self.blobs / h[:2] / h[2:4] / h

    def _tmp_path(self) -> Path:
        return self.tmp / f"{uuid.uuid4().hex}.part"

    @staticmethod
    def _commit(tmp: Path, final: Path) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)

    @staticmethod
    def _write(f: BinaryIO | None, tmp: Path, chunks: list[bytes], md5: Any) -> BinaryIO:
        """Append to the temporary file (created on the first call) and to the hash (if
        any); the file."""
        if md5 is not None:
            for chunk in chunks:
                md5.update(chunk)
        if f is None:
            # Buffered: BufferedWriter finishes the short writes a raw write may leave.
            f = open(tmp, "xb")  # noqa: SIM115 (closed by _finish, or by put on failure)
        try:
            f.writelines(chunks)
        except BaseException:
            f.close()
            raise
        return f

    def _finish(
        self, f: BinaryIO | None, tmp: Path, chunks: list[bytes], md5: Any, final: Path
    ) -> tuple[BinaryIO, str]:
        """The last bytes, then the rename into place, in one thread hop (a body smaller than
        a chunk is created, written and committed in this one hop); the closed file and the
        blob's ETag."""
        f = self._write(f, tmp, chunks, md5)
        f.close()
        self._commit(tmp, final)
        return f, f'"{md5.hexdigest()}"' if md5 is not None else mtime_etag(os.stat(final))

    async def put(
        self, key: str, chunks: AsyncIterable[bytes], *, max_size: int | None = None
    ) -> Stored:
        tmp = self._tmp_path()
        f: BinaryIO | None = None  # the temporary file, once a first full chunk is written
        # Fed in order: one thread hop at a time touches it (each is awaited before the next).
        md5 = hashlib.md5(usedforsecurity=False) if self.etag_algorithm == "md5" else None
        size = 0
        pending: list[bytes] = []
        pending_size = 0
        # The file work in flight in a thread, awaited through `shield`: a cancelled request
        # still waits for it below, so the file is never closed under a write and a rename
        # never lands after the caller has removed the blob.
        work: asyncio.Future[BinaryIO] | None = None
        finishing: asyncio.Future[tuple[BinaryIO, str]] | None = None
        try:
            async for chunk in chunks:
                size += len(chunk)
                if max_size is not None and size > max_size:
                    raise TooLarge
                pending.append(chunk)
                pending_size += len(chunk)
                if pending_size >= CHUNK:
                    # One chunk is written while the next one arrives: network and disk
                    # overlap, and at most two chunks are ever held.
                    if work is not None:
                        f = await asyncio.shield(work)
                    work = asyncio.ensure_future(
                        asyncio.to_thread(self._write, f, tmp, pending, md5)
                    )
                    pending, pending_size = [], 0
            if work is not None:
                f = await asyncio.shield(work)
            finishing = asyncio.ensure_future(
                asyncio.to_thread(self._finish, f, tmp, pending, md5, self.path(key))
            )
            f, etag = await asyncio.shield(finishing)
        except BaseException:
            if work is not None:
                with contextlib.suppress(BaseException):
                    f = await work
            if finishing is not None:
                with contextlib.suppress(BaseException):
                    await finishing
            if f is not None:
                f.close()
            tmp.unlink(missing_ok=True)
            raise
        return Stored(size, etag)

    async def open(self, key: str) -> DiskBlob:
        try:
            f = await asyncio.to_thread(open, self.path(key), "rb")
        except FileNotFoundError as e:
            raise BlobMissing(key) from e
        return DiskBlob(f, os.fstat(f.fileno()).st_size)

    async def stat(self, key: str) -> Stored | None:
        try:
            st = await asyncio.to_thread(os.stat, self.path(key))
        except FileNotFoundError:
            return None
        return Stored(st.st_size)

    def _copy(self, src: Path, dst: Path) -> int:
        tmp = self._tmp_path()
        try:
            try:
                # Blobs are immutable, so a hard link is a copy that costs nothing.
                os.link(src, tmp)
            except FileNotFoundError:
                raise
            except OSError:
                shutil.copyfile(src, tmp)
            self._commit(tmp, dst)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return dst.stat().st_size

    async def copy(self, src: str, dst: str) -> Stored:
        try:
            size = await asyncio.to_thread(self._copy, self.path(src), self.path(dst))
        except FileNotFoundError as e:
            raise BlobMissing(src) from e
        return Stored(size)

    def _delete(self, keys: list[str]) -> None:
        for key in keys:
            self.path(key).unlink(missing_ok=True)

    async def delete(self, keys: list[str]) -> None:
        if keys:
            await asyncio.to_thread(self._delete, keys)

    async def close(self) -> None:
        return None
