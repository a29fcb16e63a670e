"""The MCP server's overhead: a `query` tool call over stdio and over streamable HTTP, against
the same request made directly to `/rest/v1`, in the same run, one call at a time (an agent
waits for each answer).

    python bench/mcp.py [--calls 500]

Prints p50/p99 per path and what MCP adds per call at the median (target: under 5 ms).
Three MCP paths: stdio (`supalite mcp`, the service key), HTTP at `/mcp` with the service key,
and HTTP as a signed-in user (the user mode's session-store lookup and RLS included — the
direct baseline for that row is the same request with the user's token).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

# This script is named like the SDK's package: take its folder off the path while importing
# `mcp`, then put it back for `load`.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import asyncpg  # noqa: E402
import httpx  # noqa: E402
import httpx2  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

from mcp import ClientSession, StdioServerParameters  # noqa: E402

sys.path.insert(0, str(_HERE))
from load import free_port, start_supalite, wait_http  # noqa: E402

SETUP = """
create table public.items (id int primary key, owner uuid, label text, price numeric);
insert into public.items select g, null, 'item ' || g, g * 1.5 from generate_series(1, 1000) g;
alter table public.items enable row level security;
create policy read_all on public.items for select to authenticated using (true);
grant select on public.items to authenticated;
"""
QUERY = {"table": "items", "select": "id,label,price", "filters": {"id": 0}}


def ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def timed(n: int, one: Callable[[int], Awaitable[Any]]) -> list[float]:
    for i in range(20):  # warm-up: connections, caches, the schema cache
        await one(i)
    out = []
    for i in range(n):
        t = time.perf_counter()
        await one(i)
        out.append((time.perf_counter() - t) * 1000)
    return out


async def direct(url: str, key: str, token: str, n: int) -> list[float]:
    headers = {"apikey": key, "Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers) as http:

        async def one(i: int) -> None:
            r = await http.get("/rest/v1/items", params={"select": "id,label,price",
                                                         "id": f"eq.{i % 1000 + 1}"})  # fmt: skip
            assert r.status_code == 200 and len(r.json()) == 1, r.text

        return await timed(n, one)


async def tool_calls(session: ClientSession, n: int) -> list[float]:
    async def one(i: int) -> None:
        args = {**QUERY, "filters": {"id": i % 1000 + 1}}
        result = await session.call_tool("query", args)
        assert not result.is_error and result.structured_content, result
        assert result.structured_content["row_count"] == 1

    return await timed(n, one)


async def over_http(url: str, bearer: str, n: int, sign_in: dict[str, str] | None) -> list[float]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {bearer}"}, timeout=60) as http,
        streamable_http_client(url + "/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        if sign_in is not None:
            r = await session.call_tool("auth_sign_in_with_password", sign_in)
            assert not r.is_error, r
        return await tool_calls(session, n)


async def over_stdio(project: Path, n: int) -> list[float]:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "supalite.cli", "mcp"], cwd=project
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        return await tool_calls(session, n)


async def run(url: str, banner: dict[str, str], project: Path, n: int) -> None:
    anon, service = banner["anon key"], banner["service_role key"]
    conn = await asyncpg.connect(banner["DB URL"])
    await conn.execute(SETUP)
    await conn.close()
    email, password = "bench@example.com", "bench-password-1"
    async with httpx.AsyncClient(base_url=url) as http:
        admin = {"apikey": service, "Authorization": f"Bearer {service}"}
        user = {"email": email, "password": password}
        r = await http.post("/auth/v1/admin/users", json={**user, "email_confirm": True},
                            headers=admin)  # fmt: skip
        assert r.status_code == 200, r.text
        r = await http.post("/auth/v1/token", params={"grant_type": "password"}, json=user,
                            headers={"apikey": anon})  # fmt: skip
        user_token = r.json()["access_token"]

    rows: list[tuple[str, list[float], list[float]]] = []
    base_service = await direct(url, anon, service, n)
    rows.append(("stdio, service key", await over_stdio(project, n), base_service))
    rows.append(("HTTP, service key", await over_http(url, service, n, None), base_service))
    base_user = await direct(url, anon, user_token, n)
    user = await over_http(url, anon, n, {"email": email, "password": password})
    rows.append(("HTTP, signed-in user", user, base_user))

    print(f"query tool vs GET /rest/v1 (one row by key), {n} calls one at a time, loopback")
    print(f"{'path':<22} {'MCP p50':>8} {'MCP p99':>8} {'REST p50':>9} {'REST p99':>9} "
          f"{'added p50':>10} {'ratio':>6}")  # fmt: skip
    for label, mcp_ms, rest_ms in rows:
        (p50, p99), (b50, b99) = ms(mcp_ms), ms(rest_ms)
        print(f"{label:<22} {p50:>8.2f} {p99:>8.2f} {b50:>9.2f} {b99:>9.2f} "
              f"{p50 - b50:>+10.2f} {p50 / b50:>5.2f}x")  # fmt: skip
    print("target: under 5 ms added per call at p50")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=500)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="supalite-bench-mcp-") as d:
        project = Path(d)
        api_port, db_port = free_port(), free_port()
        env = {**os.environ, "SUPALITE_PORT": str(api_port), "SUPALITE_DB_PORT": str(db_port)}
        server, banner = start_supalite(project, env)
        url = f"http://127.0.0.1:{api_port}"
        try:
            wait_http(url + "/health")
            asyncio.run(run(url, banner, project, args.calls))
        finally:
            server.terminate()
            server.wait(60)


if __name__ == "__main__":
    main()
