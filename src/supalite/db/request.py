"""The per-request transaction: every data access a request makes runs inside one.

As PostgREST does it: BEGIN (READ ONLY for reads), then one statement that sets the search
path, the role and the request GUCs locally (`request.jwt.claims`, `request.method`,
`request.path`, `request.headers`), then the work, then COMMIT.  RLS and grants then decide,
inside Postgres, what the caller may see and do.  The settings are bind parameters, always.
That statement (`_supalite_request.begin`) first clears whatever the connection's previous
request left on the session, so API connections need no reset when they go back to the pool.

A one-statement request whose connection's session already has its settings skips that
statement (`request_statement`), making it one round trip:
- A read needs all of them.  Its statement reports a digest of the settings it ran under, and
  a result that ran under anything else is thrown away and the read run again after the
  settings (bootstrap 0021_request_session.sql).
- An insert needs its caller's (role, search path, claims).  Its body is read through a
  check of them (`RequestContext.checked_body`), before any row is written, which also sets
  the request's own (method, path, headers) for the statement; on a session that changed, it
  raises and the statement does nothing, and the insert runs again after the settings
  (bootstrap 0022_request_checked_body.sql).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import asyncpg

from supalite.db.api_pool import ApiConnection, ApiPool, SessionSettings

# Resets the session and sets the request's settings, in one statement (see the SQL file).
_BEGIN = "select _supalite_request.begin($1, $2, $3, $4, $5, $6, $7, $8)"
# The same, answering the digest of the settings now in place.
_ENTER = "select _supalite_request.enter($1, $2, $3, $4, $5, $6, $7, $8)"
# The column every Data API statement reports that digest in (rest/sql.py).
SESSION_COLUMN = "pgrst_session"
SESSION_DIGEST = f"_supalite_request.settings() AS {SESSION_COLUMN}"
# What a checked body raises on a session that no longer has the caller expected.
SESSION_CHANGED = "SLSES"
# What else an insert can meet under such a session before its body is read (and checked):
# a read-only session, or a role lacking the caller's privileges.  Nothing has run then.
_MAYBE_STALE = frozenset({SESSION_CHANGED, "25006", "42501"})


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
        """The settings' values, in `begin()`'s order: the caller's (api_pool.CALLER_SETTINGS)
        first, then the request's own."""
        return (self.search_path, self.role, self.claims_json, self.method, self.path,
                self.headers_json)  # fmt: skip

    def with_values(self, values: Sequence[str]) -> RequestContext:
        """This request with other settings' values, given in `values()` order."""
        search_path, role, claims, method, path, headers = values
        return replace(self, search_path=search_path, role=role, claims_json=claims,
                       method=method, path=path, headers_json=headers)  # fmt: skip

    def one_statement(self, atomic: bool) -> bool:
        """Whether the request's work is its one statement, with nothing to run before or
        after it in its transaction (see `request_transaction`)."""
        return not (atomic or self.rollback or self.pre_request)

    def checked_body(self, param: Callable[[str], str], body: str) -> str:
        """SQL for the body expression `body`, checked against this request's caller and
        setting its own settings, for `request_statement`'s one-round-trip insert; `param`
        adds a bind parameter.  Read once, before any row of the insert is written (bootstrap
        0022_request_checked_body.sql)."""
        search_path, role, claims, method, path, headers = (param(v) for v in self.values())
        return (
            f"CASE WHEN current_user = {role} AND current_setting('search_path') = {search_path}"
            f" AND current_setting('request.jwt.claims', true) = {claims}"
            " AND current_setting('transaction_read_only') = 'off'"
            f" AND set_config('request.method', {method}, true) IS NOT NULL"
            f" AND set_config('request.path', {path}, true) IS NOT NULL"
            f" AND set_config('request.headers', {headers}, true) IS NOT NULL"
            f" THEN {body} ELSE _supalite_request.session_changed() END"
        )


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
        if ctx.one_statement(atomic):
            await _settle(conn, ctx.values(), ctx.read_only)
            yield conn
            return
        conn.remember_session(None)  # whatever a previous request left is about to change
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
    pool: ApiPool,
    ctx: RequestContext,
    sql: str,
    params: Sequence[Any],
    *,
    atomic: bool = True,
    checked: bool = False,
) -> AsyncIterator[tuple[asyncpg.Connection, asyncpg.Record | None]]:
    """The request's connection with its first statement run (`request_transaction`'s rules),
    and that statement's row.  A one-statement request (`RequestContext.one_statement`) costs
    one round trip when its connection's session already serves it: a read whose `sql`
    reports SESSION_DIGEST (every Data API read does), or an insert whose `sql` passes its
    body through `RequestContext.checked_body` (`checked`)."""
    if not ctx.one_statement(atomic) or not (ctx.read_only or checked):
        async with request_transaction(pool, ctx, atomic=atomic) as conn:
            yield conn, await conn.fetchrow(sql, *params)
        return
    values = ctx.values()
    async with pool._acquire((values, ctx.read_only)) as conn:
        run = _read if ctx.read_only else _checked_write
        yield conn, await run(conn, values, sql, params)


async def _read(
    conn: ApiConnection, values: tuple[str, ...], sql: str, params: Sequence[Any]
) -> asyncpg.Record | None:
    last = conn.session_settings()
    if last is not None and last.serves(values, True):
        try:
            row = await conn.fetchrow(sql, *params)
        except asyncpg.PostgresError:
            row = None  # perhaps not this request's error: run again under its settings
        if row is not None and row.get(SESSION_COLUMN) == last.digest:
            return row
    await _settle(conn, values, True)
    return await conn.fetchrow(sql, *params)


async def _checked_write(
    conn: ApiConnection, values: tuple[str, ...], sql: str, params: Sequence[Any]
) -> asyncpg.Record | None:
    last = conn.session_settings()
    if last is not None and last.serves(values, False):
        try:
            return await conn.fetchrow(sql, *params)
        except asyncpg.PostgresError as e:
            if e.sqlstate not in _MAYBE_STALE:
                raise
    await _settle(conn, values, False)
    return await conn.fetchrow(sql, *params)


async def _settle(conn: ApiConnection, values: tuple[str, ...], read_only: bool) -> None:
    """Resets the session and puts the settings on it, for the statements after this one,
    each its own transaction; the connection remembers them."""
    conn.remember_session(None)  # in case this fails
    digest = await conn.fetchval(_ENTER, *values, "on" if read_only else "off", False)
    conn.remember_session(SessionSettings(values, read_only, digest))
