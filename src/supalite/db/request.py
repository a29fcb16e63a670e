"""The per-request transaction: every data access a request makes runs inside one.

As PostgREST does it: BEGIN (READ ONLY for reads), then one statement that sets the search
path, the role and the request GUCs locally (`request.jwt.claims`, `request.method`,
`request.path`, `request.headers`), then the work, then COMMIT.  RLS and grants then decide,
inside Postgres, what the caller may see and do.  The settings are bind parameters, always.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

_SETTINGS = ("search_path", "role", "request.jwt.claims", "request.method", "request.path",
             "request.headers")  # fmt: skip
_SET_LOCALS = "select " + ", ".join(
    f"set_config('{name}', ${i}, true)" for i, name in enumerate(_SETTINGS, 1)
)
# The same settings for the rest of the session, and whether its transactions are read-only:
# for a request that is one statement, which then is its own transaction (see below).
_SET_SESSION = "select " + ", ".join(
    f"set_config('{name}', ${i}, false)"
    for i, name in enumerate((*_SETTINGS, "default_transaction_read_only"), 1)
)


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
    return "BEGIN READ ONLY" if ctx.read_only else "BEGIN"


async def _start(conn: asyncpg.Connection, ctx: RequestContext) -> None:
    # The settings are bind parameters (never spliced into SQL text); the role is in place
    # before the statement is planned, as grants and RLS are checked then.
    await conn.execute(_begin(ctx))
    await conn.execute(_SET_LOCALS, *ctx.values())
    if ctx.pre_request:
        await conn.execute(f"SELECT {ctx.pre_request}()")


@asynccontextmanager
async def request_transaction(
    pool: asyncpg.Pool, ctx: RequestContext, *, atomic: bool = True
) -> AsyncIterator[asyncpg.Connection]:
    """A connection set up for the request.  `atomic=False` is for requests whose work is one
    statement with nothing to undo after it (reads; writes with no check on their result):
    the settings then hold for the session, so the statement is its own transaction (read-only
    for reads) and the request costs two round trips fewer.  The pool's reset on release
    (`ApiConnection`) puts the session back, role included, before anyone else gets it."""
    async with pool.acquire() as conn:
        if not (atomic or ctx.rollback or ctx.pre_request):
            read_only = "on" if ctx.read_only else "off"
            await conn.execute(_SET_SESSION, *ctx.values(), read_only)
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
