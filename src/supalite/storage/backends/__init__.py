"""Where object bytes live.  A backend stores immutable blobs under opaque keys; everything a
caller sees (names, buckets, metadata, who may read) lives in `storage.objects`.

Each upload writes a new blob under a new key (the object's `version`), so a blob becomes
visible only when the metadata row that names it commits, and replacing an object never
touches the bytes a concurrent download is reading.  The interface is small on purpose, so an
S3 backend (PutObject / multipart upload, ranged GetObject, CopyObject, DeleteObjects,
HeadObject) can implement it next to the disk one.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Protocol


class TooLarge(Exception):
    """The body went past `max_size`; nothing was kept."""


class BlobMissing(Exception):
    """No blob under that key (the metadata row outlived its bytes)."""


@dataclass(frozen=True)
class Stored:
    """A stored blob: its size, and its ETag as S3 gives it (quoted), when the backend knows
    it without reading the bytes again: `put` always does (the disk backend hashes the bytes
    as they stream by; S3 answers it), `copy` on S3 does (CopyObject answers it); None
    otherwise (the bytes, and so the ETag, are the source's)."""

    size: int
    etag: str | None = None


class Blob(Protocol):
    """An opened blob: its size, and its bytes as an async iterator over a range."""

    size: int

    def read(self, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Bytes `start..end` inclusive (end None: to the last byte), in bounded chunks;
        closes the blob when exhausted or closed."""
        ...

    async def close(self) -> None: ...


class Backend(Protocol):
    async def put(
        self, key: str, chunks: AsyncIterable[bytes], *, max_size: int | None = None
    ) -> Stored:
        """Store a new blob from a stream: all of it, atomically, or nothing (TooLarge,
        a client that goes away, any error).  The result carries the blob's ETag."""
        ...

    async def open(self, key: str) -> Blob:
        """The blob for reading (BlobMissing if absent)."""
        ...

    async def stat(self, key: str) -> Stored | None: ...

    async def copy(self, src: str, dst: str) -> Stored:
        """A new blob `dst` with the bytes of `src` (BlobMissing if absent)."""
        ...

    async def delete(self, keys: list[str]) -> None:
        """Remove blobs; absent ones are not an error."""
        ...

    async def close(self) -> None: ...
