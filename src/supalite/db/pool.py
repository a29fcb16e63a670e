"""Connection pools: `api` logs in as `authenticator` and switches role per request (so the
database, not supalite, enforces what each role may do); `admin` is the database owner, for
services' own bookkeeping (auth tables, storage metadata) and for bootstrap."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from supalite.config import DbSettings
from supalite.db.api_pool import ApiConnection, ApiPool


def with_credentials(url: str, user: str, password: str) -> str:
    """The same server and database, logging in as someone else."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def _ssl_arg(url: str, db: DbSettings) -> ssl.SSLContext | None:
    if db.ssl_reject_unauthorized or "sslmode=" not in url:
        return None  # asyncpg's own handling of sslmode (verify-full etc.) applies
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


@dataclass
class Pools:
    api: ApiPool
    admin: asyncpg.Pool

    async def close(self) -> None:
        await self.api.close()
        await self.admin.close()


async def create_pools(admin_url: str, api_url: str, db: DbSettings) -> Pools:
    def connect_api() -> Awaitable[ApiConnection]:
        return asyncpg.connect(  # type: ignore[no-any-return]
            api_url,
            connection_class=ApiConnection,
            ssl=_ssl_arg(api_url, db),
            timeout=db.connection_timeout,
            command_timeout=None,
        )

    api = await ApiPool.open(
        connect_api, min_size=1, max_size=db.pool_size, idle_timeout=db.idle_timeout
    )
    try:
        admin = await asyncpg.create_pool(
            admin_url,
            min_size=1,
            max_size=max(2, db.pool_size // 4),
            ssl=_ssl_arg(admin_url, db),
            max_inactive_connection_lifetime=db.idle_timeout,
            timeout=db.connection_timeout,
            command_timeout=None,
        )
    except BaseException:
        await api.close()
        raise
    return Pools(api=api, admin=admin)
