"""Baseline for bench/rest.py: what a user would write instead of the Data API.

The same three endpoints as hand-written Starlette + asyncpg handlers, with the SQL the Data
API runs for them (the same joins and JSON rendering, as its statements show) and no generic
layer: no parsing, no planning, no per-request role switch.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

POOL: asyncpg.Pool | None = None

ITEM_SQL = (
    "select coalesce(json_agg(t), '[]')::text from"
    " (select id, name, price, category_id from bench_items where id = $1) t"
)
# The embed as the Data API renders it: a lateral join of the related row as JSON.
ITEMS_SQL = (
    "select coalesce(json_agg(t), '[]')::text from (select i.id, i.name, i.price,"
    " c_l.row as category from bench_items i left join lateral (select row_to_json(c) as row"
    " from (select c.id, c.name from bench_categories c where c.id = i.category_id) c) c_l"
    " on true order by i.id limit 100) t"
)
CREATE_SQL = "insert into bench_writes (name, price) values ($1, $2)"


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    global POOL
    POOL = await asyncpg.create_pool(os.environ["BENCH_DB_URL"], min_size=4, max_size=20)
    yield
    await POOL.close()


def signed_in(request: Request) -> bool:
    """A caller's token, when one is sent, is verified (PyJWT, HS256): what any endpoint
    that serves signed-in users must do.  The SQL stays the same: no per-user filter."""
    auth = request.headers.get("authorization")
    if auth is None:
        return True
    try:
        jwt.decode(auth.removeprefix("Bearer "), os.environ["BENCH_JWT_SECRET"], ["HS256"])
    except jwt.InvalidTokenError:
        return False
    return True


async def item(request: Request) -> Response:
    assert POOL is not None
    if not signed_in(request):
        return Response(status_code=401)
    body = await POOL.fetchval(ITEM_SQL, int(request.query_params["id"]))
    return Response(body, media_type="application/json")


async def items_with_category(request: Request) -> Response:
    assert POOL is not None
    body = await POOL.fetchval(ITEMS_SQL)
    return Response(body, media_type="application/json")


async def create(request: Request) -> Response:
    assert POOL is not None
    row = json.loads(await request.body())
    await POOL.execute(CREATE_SQL, row["name"], row["price"])
    return Response(status_code=201)


app = Starlette(
    routes=[
        Route("/item", item),
        Route("/items", items_with_category),
        Route("/create", create, methods=["POST"]),
    ],
    lifespan=lifespan,
)
