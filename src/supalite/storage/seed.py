"""A configured bucket's `objects_path`: the files under that folder, uploaded into the bucket
at start — what the Supabase CLI's `supabase seed buckets` does after creating the buckets (and
`supabase start` on a fresh database, and `supabase db reset`: `UpsertObjects` in its
`pkg/storage/batch.go`).

As the CLI does it: the path is relative to the `supabase/` folder; the folder is walked in
lexical order, regular files only (symbolic links are not followed), and each file becomes the
object `<path relative to the folder>` (a path naming one file: the object `<file name>`),
uploaded with `x-upsert: true`, `Cache-Control: max-age=3600` and the content type Go sniffs
(`sniff.py`), as the service role — through the plain upload path, so the bucket's and the
global size limits and the bucket's `allowed_mime_types` apply.

Unlike the CLI, which uploads every file each time it seeds, a file whose object already holds
the same bytes, type and cache control is left alone, so restarts write nothing.  Before
anything is uploaded every file is checked (its name, type and size against the bucket's
limits); a refusal stops the start with the file named, and then nothing was uploaded.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from supalite.config import ConfigError
from supalite.storage import errors as E
from supalite.storage import objects
from supalite.storage.backends import BlobMissing
from supalite.storage.context import StorageContext, service_caller
from supalite.storage.names import check_key
from supalite.storage.sniff import SNIFF_LEN, cli_content_type

log = logging.getLogger("supalite.storage")
CACHE_CONTROL = "max-age=3600"  # the CLI's, storage-js's default
READ_CHUNK = 1024 * 1024
# Workers of one server (or a fleet) starting together seed one at a time: the later ones find
# the objects in place and write nothing.
_LOCK_KEY = 0x5345_4544  # "SEED"


@dataclass(frozen=True)
class SeedFile:
    path: Path
    name: str  # the object's name in the bucket
    size: int
    mimetype: str


def _walk(root: Path) -> list[Path]:
    """Go's `fs.WalkDir` order: lexical, depth first; regular files only, links not followed."""
    if root.is_file() and not root.is_symlink():
        return [root]
    out: list[Path] = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.is_dir(follow_symlinks=False):
            out.extend(_walk(Path(entry.path)))
        elif entry.is_file(follow_symlinks=False):
            out.append(Path(entry.path))
    return out


def list_files(root: Path) -> list[SeedFile]:
    """The files of an `objects_path`, with their object names and the CLI's content types."""
    if not root.exists():
        raise FileNotFoundError(errno.ENOENT, "no such file or directory", str(root))
    files = []
    for path in _walk(root):
        with path.open("rb") as f:
            head = f.read(SNIFF_LEN)
        name = path.name if path == root else path.relative_to(root).as_posix()
        files.append(SeedFile(path, name, path.stat().st_size, cli_content_type(head, path.name)))
    return files


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    f = await asyncio.to_thread(path.open, "rb")
    try:
        while data := await asyncio.to_thread(f.read, READ_CHUNK):
            yield data
    finally:
        f.close()


async def _digest(chunks: AsyncIterator[bytes]) -> bytes:
    h = hashlib.sha256()
    async for chunk in chunks:
        h.update(chunk)
    return h.digest()


async def _unchanged(ctx: StorageContext, bucket: str, f: SeedFile) -> bool:
    """Whether the object already is this file: same type, cache control and bytes."""
    try:
        obj = await objects.find_as_admin(ctx, bucket, f.name)
    except E.StorageError:
        return False
    md = obj.metadata
    if (md.get("size"), md.get("mimetype"), md.get("cacheControl")) != (
        f.size, f.mimetype, CACHE_CONTROL,
    ):  # fmt: skip
        return False
    try:
        blob = await objects.open_blob(ctx, obj)
    except (E.StorageError, BlobMissing):
        return False
    return await _digest(blob.read()) == await _digest(_chunks(f.path))


def _refused(bucket: str, f: SeedFile, e: E.StorageError) -> ConfigError:
    return ConfigError(
        f"storage.buckets.{bucket}.objects_path: cannot upload {f.path} as {bucket}/{f.name}: "
        f"{e.message} ({e.code})"
    )


async def _check(ctx: StorageContext, bucket: str, files: list[SeedFile]) -> None:
    """Refuse what the upload would refuse, before anything is uploaded."""
    limits = await objects.bucket_limits(ctx, bucket)
    for f in files:
        try:
            check_key(f.name)
            if f.size > objects.type_and_size_limit(ctx, limits, f.name, f.mimetype):
                raise E.entity_too_large()
        except E.StorageError as e:
            raise _refused(bucket, f, e) from e


async def seed_objects(ctx: StorageContext, supabase_dir: Path) -> int:
    """Upload the configured buckets' `objects_path` files that differ from their objects; how
    many were uploaded.  ConfigError names the file the bucket refuses, or a missing path."""
    uploaded = 0
    async with ctx.admin() as lock:
        await lock.execute("select pg_advisory_lock($1)", _LOCK_KEY)
        try:
            for bucket, spec in ctx.settings.buckets.items():
                if spec.get("objects_path"):
                    root = supabase_dir / str(spec["objects_path"])
                    uploaded += await _seed_bucket(ctx, bucket, root)
        finally:
            await lock.execute("select pg_advisory_unlock($1)", _LOCK_KEY)
    return uploaded


async def _seed_bucket(ctx: StorageContext, bucket: str, root: Path) -> int:
    try:
        files = await asyncio.to_thread(list_files, root)
    except OSError as e:
        raise ConfigError(
            f"storage.buckets.{bucket}.objects_path: cannot read {root}: {e.strerror or e}"
        ) from e
    await _check(ctx, bucket, files)
    uploaded = 0
    for f in files:
        if await _unchanged(ctx, bucket, f):
            continue
        headers = {
            "content-type": f.mimetype,
            "cache-control": CACHE_CONTROL,
            "content-length": str(f.size),
        }
        try:
            await objects.upload(
                ctx, service_caller(), bucket, f.name, headers, _chunks(f.path), upsert=True
            )
        except E.StorageError as e:
            raise _refused(bucket, f, e) from e
        log.info("storage: uploaded %s => %s/%s", f.path, bucket, f.name)
        uploaded += 1
    return uploaded
