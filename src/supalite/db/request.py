"""The per-request transaction: every data access a request makes runs inside one.

As PostgREST does it: BEGIN (READ ONLY for reads), then one statement that sets the search
path, the role and the request GUCs locally (`request.jwt.claims`, `request.method`,
`request.path`, `request.headers`), then the work, then COMMIT.  RLS and grants then decide,
inside Postgres, what the caller may see and do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

_SET_LOCALS = (
    "select set_config('search_path', $1, true), set_config('role', $2, true),"
    " set_config('request.jwt.claims', $3, true), set_config('request.method', $4, true),"
    " set_config('request.path', $5, true), set_config('request.headers', $6, true)"
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


@asynccontextmanager
async def request_transaction(
    pool: asyncpg.Pool, ctx: RequestContext
) -> AsyncIterator[asyncpg.Connection]:
    async with pool.acquire() as conn:
        tx = conn.transaction(readonly=ctx.read_only)
        await tx.start()
        try:
            await conn.execute(
                _SET_LOCALS,
                ctx.search_path,
                ctx.role,
                ctx.claims_json,
                ctx.method,
                ctx.path,
                ctx.headers_json,
            )
            yield conn
        except BaseException:
            await tx.rollback()
            raise
        else:
            if ctx.rollback:
                await tx.rollback()
            else:
                await tx.commit()
