"""What the Storage service needs from the app, and who is calling.

`StorageContext.start` is called by `app.py` at startup: it opens the backend (disk, in the
data folder, or an S3 bucket: `open_backend`), makes sure the buckets named in the
configuration exist and uploads their `objects_path` files (`seed.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from supalite.config import ConfigError, Settings, StorageSettings
from supalite.db.api_pool import ApiPool
from supalite.db.request import RequestContext, request_transaction
from supalite.gateway import Claims
from supalite.storage import sql as S
from supalite.storage.backends import Backend
from supalite.storage.backends.disk import DiskBackend, EtagAlgorithm
from supalite.storage.heap import keep_buffers

log = logging.getLogger("supalite.storage")
# A blob no object names is removed once it is this old (seconds): far longer than any upload
# takes between writing its bytes and committing its row.
SWEEP_GRACE = 24 * 3600
SWEEP_EVERY = 3600


@dataclass(frozen=True)
class Caller:
    """The request as the database sees it: role and claims (RLS reads them), and the
    request's method/path/headers as Supabase sets them."""

    claims: Claims
    method: str = "GET"
    path: str = "/"
    headers_json: str = "{}"

    @property
    def owner(self) -> str | None:
        return self.claims.sub

    def request_context(self) -> RequestContext:
        return RequestContext(
            role=self.claims.role,
            claims_json=self.claims.claims_json,
            method=self.method,
            path=self.path,
            headers_json=self.headers_json,
        )


def service_caller(owner: str | None = None) -> Caller:
    """The storage service acting on its own account (signed uploads, as Supabase does)."""
    claims: dict[str, Any] = {"role": "service_role"}
    if owner:
        claims["sub"] = owner
    return Caller(Claims("service_role", claims))


def headers_json(headers: Mapping[str, str]) -> str:
    # What policies may read from `request.headers`; never the caller's credentials.
    hidden = {"authorization", "apikey", "cookie"}
    return json.dumps({k: v for k, v in headers.items() if k not in hidden})


def describe(st: StorageSettings) -> dict[str, Any]:
    """`GET /storage/v1/config` (supalite's own): the global limit and the features in the
    shape of Supabase's Management API storage config, and where bytes live — never a
    credential (no keys, and no user:password in the endpoint URL)."""
    backend: dict[str, Any] = {"type": "s3" if st.backend == "s3" else "file"}
    if st.backend == "s3":
        endpoint = None
        if st.s3_endpoint:
            u = urlsplit(st.s3_endpoint)
            endpoint = u._replace(netloc=u.netloc.rpartition("@")[2]).geturl()
        backend.update(
            bucket=st.s3_bucket, endpoint=endpoint, region=st.s3_region, prefix=st.s3_prefix,
            forcePathStyle=st.s3_force_path_style,
        )  # fmt: skip
    return {
        "fileSizeLimit": st.file_size_limit,
        "features": {
            "imageTransformation": {"enabled": st.image_transformation_enabled},
            "s3Protocol": {"enabled": False},  # not implemented (docs/storage.md)
        },
        "backend": backend,
    }


async def open_backend(settings: Settings) -> Backend:
    """The configured blob store: the data folder, or a bucket of an S3-compatible service."""
    st = settings.storage
    if st.backend != "s3":
        etag: EtagAlgorithm = "mtime" if st.file_etag_algorithm == "mtime" else "md5"
        return DiskBackend(settings.data_dir / "storage", etag_algorithm=etag)
    # Imported here: aiobotocore is loaded only by projects that use S3.
    from supalite.storage.backends.s3 import S3Backend, S3Config

    if not st.s3_bucket:
        raise ConfigError(
            "storage backend is s3 but no bucket is set ([storage.s3] bucket or GLOBAL_S3_BUCKET)"
        )
    config = S3Config(
        bucket=st.s3_bucket, endpoint=st.s3_endpoint, region=st.s3_region,
        force_path_style=st.s3_force_path_style, access_key_id=st.s3_access_key_id,
        secret_access_key=st.s3_secret_access_key, prefix=st.s3_prefix,
    )  # fmt: skip
    return await S3Backend.create(config)


@dataclass
class StorageContext:
    settings: StorageSettings
    api_pool: ApiPool
    admin_pool: asyncpg.Pool
    backend: Backend
    jwt_secret: str
    # Where unfinished TUS uploads are staged: the data folder, whatever the backend, so every
    # process sharing it can append to any upload (`tus.py`).
    tus_dir: Path | None = None
    _sweeper: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def tx(self, caller: Caller) -> AsyncIterator[asyncpg.Connection]:
        """One transaction in the caller's role, with their claims set."""
        async with request_transaction(self.api_pool, caller.request_context()) as conn:
            yield conn

    @asynccontextmanager
    async def read(self, caller: Caller) -> AsyncIterator[asyncpg.Connection]:
        """For one read-only statement in the caller's role: it is its own (read-only)
        transaction, so the request costs two round trips instead of four."""
        rc = replace(caller.request_context(), read_only=True)
        async with request_transaction(self.api_pool, rc, atomic=False) as conn:
            yield conn

    @asynccontextmanager
    async def admin(self) -> AsyncIterator[asyncpg.Connection]:
        """The storage superuser (no RLS), for what Supabase does as its own admin."""
        async with self.admin_pool.acquire() as conn:
            yield conn

    @property
    def global_limit(self) -> int:
        return self.settings.file_size_limit

    def size_limit(self, bucket_limit: int | None) -> int:
        if bucket_limit:
            return min(bucket_limit, self.global_limit)
        return self.global_limit

    @classmethod
    async def start(
        cls, settings: Settings, jwt_secret: str, api_pool: ApiPool, admin_pool: asyncpg.Pool
    ) -> StorageContext:
        keep_buffers()  # bodies stream through request-sized buffers: reuse them (heap.py)
        backend = await open_backend(settings)
        ctx = cls(settings.storage, api_pool, admin_pool, backend, jwt_secret,
                  tus_dir=settings.data_dir / "storage" / "tus")  # fmt: skip
        await ctx.seed_buckets()
        from supalite.storage.seed import seed_objects  # here: seed builds on this module

        try:
            await seed_objects(ctx, settings.supabase_dir)
        except BaseException:
            await ctx.close()
            raise
        ctx._sweeper = asyncio.create_task(ctx._sweep_forever())
        return ctx

    async def seed_buckets(self) -> None:
        async with self.admin() as conn:
            for name, spec in self.settings.buckets.items():
                mimes = spec.get("allowed_mime_types")
                await conn.execute(
                    S.SEED_BUCKET,
                    name,
                    bool(spec.get("public", False)),
                    spec.get("file_size_limit"),
                    list(mimes) if mimes else None,
                )

    async def register_blob(self, version: str) -> None:
        """Note a blob before its bytes are written, so it can be found if its row never
        commits."""
        async with self.admin() as conn:
            await conn.execute(S.REGISTER_BLOB, version)

    async def delete_blobs(self, versions: list[str]) -> None:
        versions = [v for v in versions if v]
        if not versions:
            return
        await self.backend.delete(versions)
        await self.forget_blobs(versions)

    async def forget_blobs(self, versions: list[str]) -> None:
        """Drop registered blobs from the registry (their bytes are gone, or never came)."""
        async with self.admin() as conn:
            await conn.execute(S.FORGET_BLOBS, versions)

    async def sweep(self, grace: float = SWEEP_GRACE, batch: int = 1000) -> int:
        """Remove blobs no object names (older than `grace` seconds), and expired TUS
        uploads; how many."""
        from supalite.storage import tus  # here: tus builds on this module

        removed = await tus.sweep_expired(self)
        while True:
            async with self.admin() as conn:
                rows = await conn.fetch(S.ORPHAN_BLOBS, grace, batch)
            await self.delete_blobs([r["version"] for r in rows])
            removed += len(rows)
            if len(rows) < batch:
                return removed

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
                log.warning("storage: orphan sweep failed: %s", e)
            await asyncio.sleep(SWEEP_EVERY)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.backend.close()
