"""Baseline for bench/rest.py: what a user would write instead of the Data API.

The same three endpoints as hand-written Starlette + asyncpg handlers, with the same SQL shape
and no generic layer: no parsing, no planning, no per-request role switch.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

POOL: asyncpg.Pool | None = None


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    global POOL
    POOL = await asyncpg.create_pool(os.environ["BENCH_DB_URL"], min_size=4, max_size=20)
    yield
    await POOL.close()


async def item(request: Request) -> Response:
    assert POOL is not None
    body = await POOL.fetchval(
        "select coalesce(json_agg(t), '[]')::text from"
        " (select id, name, price, category_id from bench_items where id = $1) t",
        int(request.query_params["id"]),
    )
    return Response(body, media_type="application/json")


async def items_with_category(request: Request) -> Response:
    assert POOL is not None
    body = await POOL.fetchval(
        "select coalesce(json_agg(t), '[]')::text from (select i.id, i.name, i.price,"
        " (select row_to_json(c) from (select c.id, c.name from bench_categories c"
        "  where c.id = i.category_id) c) as category"
        " from bench_items i order by i.id limit 100) t"
    )
    return Response(body, media_type="application/json")


async def create(request: Request) -> Response:
    assert POOL is not None
    row = json.loads(await request.body())
    await POOL.execute(
        "insert into bench_writes (name, price) values ($1, $2)", row["name"], row["price"]
    )
    return Response(status_code=201)


app = Starlette(
    routes=[
        Route("/item", item),
        Route("/items", items_with_category),
        Route("/create", create, methods=["POST"]),
    ],
    lifespan=lifespan,
)
