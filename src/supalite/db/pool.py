"""Connection pools: `api` logs in as `authenticator` and switches role per request (so the
database, not supalite, enforces what each role may do); `admin` is the database owner, for
services' own bookkeeping (auth tables, storage metadata) and for bootstrap."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from supalite.config import DbSettings
from supalite.db.request import ApiPool, SessionSettings


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


class ApiConnection(asyncpg.Connection):  # type: ignore[misc]
    """A connection of the API pool: reset when a request starts, not when it is released
    (`request.ApiPool`), so going back to the pool costs no round trip.  It remembers the
    settings its last read left on the session (`request.SessionSettings`), so a read that
    repeats them can skip setting them again."""

    _session: SessionSettings | None = None

    def get_reset_query(self) -> str:
        return ""

    # Methods, not attributes: the pool hands out proxies that forward calls to the connection.
    def session_settings(self) -> SessionSettings | None:
        return self._session

    def remember_session(self, settings: SessionSettings | None) -> None:
        self._session = settings


@dataclass
class Pools:
    api: ApiPool
    admin: asyncpg.Pool

    async def close(self) -> None:
        await self.api.close()
        await self.admin.close()


async def create_pools(admin_url: str, api_url: str, db: DbSettings) -> Pools:
    common = {
        "max_inactive_connection_lifetime": db.idle_timeout,
        "timeout": db.connection_timeout,
        "command_timeout": None,
    }
    api = await asyncpg.create_pool(
        api_url,
        connection_class=ApiConnection,
        min_size=1,
        max_size=db.pool_size,
        ssl=_ssl_arg(api_url, db),
        **common,
    )
    try:
        admin = await asyncpg.create_pool(
            admin_url,
            min_size=1,
            max_size=max(2, db.pool_size // 4),
            ssl=_ssl_arg(admin_url, db),
            **common,
        )
    except BaseException:
        await api.close()
        raise
    return Pools(api=ApiPool(api), admin=admin)
