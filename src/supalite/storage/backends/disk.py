"""Blobs as files under the data folder: `<root>/blobs/ab/cd/<sha256 of key>`.

Keys never become path components as given — the file name is a hash of the key — so no key,
however hostile, can name a path outside the root.  Writes go to `<root>/.tmp/` (same file
system) and are renamed into place once complete; a failed or abandoned write removes its
temporary file.  File I/O runs in worker threads in chunks of `CHUNK` bytes, so the event loop
never blocks on the disk and memory stays bounded whatever the object size.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import BinaryIO

from supalite.storage.backends import BlobMissing, Stored, TooLarge

CHUNK = 1024 * 1024
_STALE_TMP = 24 * 3600  # seconds: older temporary files are leftovers of a crash


class DiskBlob:
    def __init__(self, f: BinaryIO, size: int) -> None:
        self._f = f
        self.size = size

    async def read(self, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        last = self.size - 1 if end is None else min(end, self.size - 1)
        remaining = last - start + 1
        ahead: asyncio.Future[bytes] | None = None
        try:
            await asyncio.to_thread(self._f.seek, start)
            if remaining > 0:
                ahead = asyncio.ensure_future(
                    asyncio.to_thread(self._f.read, min(CHUNK, remaining))
                )
            while ahead is not None:
                data = await ahead
                ahead = None
                if not data:
                    break
                remaining -= len(data)
                if remaining > 0:
                    # Read the next chunk while this one is being sent: disk and network
                    # overlap, and at most two chunks are ever held.
                    ahead = asyncio.ensure_future(
                        asyncio.to_thread(self._f.read, min(CHUNK, remaining))
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
    def __init__(self, root: Path) -> None:
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

    async def put(
        self, key: str, chunks: AsyncIterable[bytes], *, max_size: int | None = None
    ) -> Stored:
        tmp = self._tmp_path()
        # Buffered: BufferedWriter finishes short writes that a raw write may leave.
        f = await asyncio.to_thread(open, tmp, "xb")
        size = 0
        pending: list[bytes] = []
        pending_size = 0
        writing: asyncio.Future[None] | None = None
        try:
            async for chunk in chunks:
                size += len(chunk)
                if max_size is not None and size > max_size:
                    raise TooLarge
                pending.append(chunk)
                pending_size += len(chunk)
                if pending_size >= CHUNK:
                    # One chunk is written (in a thread, as is) while the next one arrives:
                    # network and disk overlap, and at most two chunks are ever held.
                    if writing is not None:
                        await writing
                    writing = asyncio.ensure_future(asyncio.to_thread(f.writelines, pending))
                    pending, pending_size = [], 0
            if writing is not None:
                await writing
                writing = None
            if pending:
                await asyncio.to_thread(f.writelines, pending)
            await asyncio.to_thread(f.close)
            await asyncio.to_thread(self._commit, tmp, self.path(key))
        except BaseException:
            if writing is not None:
                with contextlib.suppress(BaseException):
                    await writing  # never close the file under a write still running
            f.close()
            tmp.unlink(missing_ok=True)
            raise
        return Stored(size)

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
