"""Helpers for the deploy tests: the admin API's client side and the functions they deploy."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx

from tests.functions.conftest import Served

# A deployed Python function that says which version it is, where it runs and what it sees.
VERSIONED = """
import os

VERSION = {version!r}

async def handler(request):
    return {{"version": VERSION, "pid": os.getpid(), "cwd": os.getcwd(),
             "secret": os.environ.get("DEPLOY_SECRET"), "dotenv": os.environ.get("MY_SECRET")}}
"""


def versioned(version: str) -> list[dict[str, str]]:
    return [{"name": "main.py", "content": VERSIONED.format(version=version)}]


def admin(served: Served, key: str | None = None, url: str | None = None) -> httpx.Client:
    key = key or served.server.service_key
    return httpx.Client(
        base_url=(url or served.url) + "/admin/v1",
        headers={"apikey": key, "Authorization": f"Bearer {key}"},
        timeout=60,
    )


def deploy(served: Served, slug: str, files: list[dict[str, str]], **extra: Any) -> Any:
    with admin(served) as c:
        r = c.post("/functions/deploy", params={"slug": slug}, json={"files": files, **extra})
    assert r.status_code in (200, 201), r.text
    return r.json()


def sql(served: Served, query: str) -> Any:
    """One query's rows (or, for one column of one row, that value) on the server's database."""

    async def run() -> Any:
        conn = await asyncpg.connect(served.server.info["DB URL"])
        try:
            rows = await conn.fetch(query)
        finally:
            await conn.close()
        if len(rows) == 1 and len(rows[0]) == 1:
            return rows[0][0]
        return [dict(r) for r in rows]

    return asyncio.run(run())


def invoke(url: str, anon_key: str, name: str) -> httpx.Response:
    headers = {"apikey": anon_key, "Authorization": f"Bearer {anon_key}"}
    return httpx.post(f"{url}/functions/v1/{name}", json={}, headers=headers, timeout=60)
