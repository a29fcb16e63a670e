"""The per-request transaction: every data access a request makes runs inside one.

As PostgREST does it: BEGIN (READ ONLY for reads), then one statement that sets the search
path, the role and the request GUCs locally (`request.jwt.claims`, `request.method`,
`request.path`, `request.headers`), then the work, then COMMIT.  RLS and grants then decide,
inside Postgres, what the caller may see and do.  The settings are bind parameters, always.
That statement (`_supalite_request.begin`) first clears whatever the connection's previous
request left on the session, so API connections need no reset when they go back to the pool.

A read whose settings are those the connection's previous read left in place skips that
statement (`request_statement`): its own statement reports a digest of the settings it ran
under, and a result that ran under anything else is thrown away and the read run again after
the settings (bootstrap 0021_request_session.sql).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg

from supalite.db.api_pool import ApiPool, SessionSettings

# Resets the session and sets the request's settings, in one statement (see the SQL file).
_BEGIN = "select _supalite_request.begin($1, $2, $3, $4, $5, $6, $7, $8)"
# The same, answering the digest of the settings now in place.
_ENTER = "select _supalite_request.enter($1, $2, $3, $4, $5, $6, $7, $8)"
# The column every Data API statement reports that digest in (rest/sql.py).
SESSION_COLUMN = "pgrst_session"
SESSION_DIGEST = f"_supalite_request.settings() AS {SESSION_COLUMN}"


@dataclass(frozen=True)
class RequestContext:
    role: str
    claims_json: str
    method: str
    path: str
    headers_json: str = "{}"
    search_path: str = "public, extensions"
    read_only: bool = False
    rollback: bool = False  # Prefer: tx=rollback — do the work, report it, keep nothing
    pre_request: str | None = None  # db-pre-request: a quoted function name, run after the settings

    def values(self) -> tuple[str, ...]:
        """The settings' values, in `_SETTINGS` order."""
        return (self.search_path, self.role, self.claims_json, self.method, self.path,
                self.headers_json)  # fmt: skip


def _begin(ctx: RequestContext) -> str:
    # Explicit both ways: the session may still say read-only after a previous request.
    return "BEGIN READ ONLY" if ctx.read_only else "BEGIN READ WRITE"


async def _start(conn: asyncpg.Connection, ctx: RequestContext) -> None:
    # The settings are bind parameters (never spliced into SQL text); the role is in place
    # before the statement is planned, as grants and RLS are checked then.
    await conn.execute(_begin(ctx))
    await conn.execute(_BEGIN, *ctx.values(), "off", True)
    if ctx.pre_request:
        await conn.execute(f"SELECT {ctx.pre_request}()")


@asynccontextmanager
async def request_transaction(
    pool: ApiPool, ctx: RequestContext, *, atomic: bool = True
) -> AsyncIterator[asyncpg.Connection]:
    """A connection set up for the request.  `atomic=False` is for requests whose work is one
    statement with nothing to undo after it (reads; writes with no check on their result):
    the settings then hold for the session, so the statement is its own transaction (read-only
    for reads) and the request costs two round trips: its settings and its statement."""
    async with pool._acquire() as conn:
        conn.remember_session(None)  # whatever a previous read left is about to change
        if not (atomic or ctx.rollback or ctx.pre_request):
            read_only = "on" if ctx.read_only else "off"
            await conn.execute(_BEGIN, *ctx.values(), read_only, False)
            yield conn
            return
        try:
            await _start(conn, ctx)
            yield conn
        except BaseException:
            if conn.is_in_transaction():
                await conn.execute("ROLLBACK")
            raise
        await conn.execute("ROLLBACK" if ctx.rollback else "COMMIT")


@asynccontextmanager
async def request_statement(
    pool: ApiPool, ctx: RequestContext, sql: str, params: Sequence[Any], *, atomic: bool = True
) -> AsyncIterator[tuple[asyncpg.Connection, asyncpg.Record | None]]:
    """The request's connection with its first statement run (`request_transaction`'s rules),
    and that statement's row.  A read that is one statement (not atomic, no rollback, no
    pre-request function) costs one round trip when its connection's previous read had the
    same settings; `sql` must then report SESSION_DIGEST (every Data API read does)."""
    if atomic or ctx.rollback or ctx.pre_request or not ctx.read_only:
        async with request_transaction(pool, ctx, atomic=atomic) as conn:
            yield conn, await conn.fetchrow(sql, *params)
        return
    values = ctx.values()
    async with pool._acquire(values) as conn:
        yield conn, await _read(conn, values, sql, params)


async def _read(
    conn: asyncpg.Connection, values: tuple[str, ...], sql: str, params: Sequence[Any]
) -> asyncpg.Record | None:
    last: SessionSettings | None = conn.session_settings()
    if last is not None and last.values == values:
        try:
            row = await conn.fetchrow(sql, *params)
        except asyncpg.PostgresError:
            row = None  # perhaps not this request's error: run again under its settings
        if row is not None and row.get(SESSION_COLUMN) == last.digest:
            return row
    conn.remember_session(None)
    digest = await conn.fetchval(_ENTER, *values, "on", False)
    conn.remember_session(SessionSettings(values, digest))
    return await conn.fetchrow(sql, *params)
