"""Auth throughput and latency against the work it cannot avoid.

Workloads, each at concurrency 16 for a bounded time, load from `wrk` (a separate process on
loopback, 2 threads x 8 connections):
  1. password sign-in                 POST /auth/v1/token?grant_type=password   (16 users)
  2. refresh grant                    POST /auth/v1/token?grant_type=refresh_token
     (each response's new refresh token is presented next, so every request rotates a token:
     the Lua script keeps a queue of live tokens per wrk thread)
  3. the signed-in user               GET /auth/v1/user                          (p99 reported)

Baselines in the same run, in this process (the server is idle meanwhile), each measured right
after the workload it is compared with:
  (a) bare bcrypt: `bcrypt.checkpw` at cost 10 — the hash a sign-in must verify — on 16
      threads (one per connection) for the same time.  bcrypt releases the GIL, so 16 threads
      in one process reach every core, as the server's sign-ins do (each worker process
      verifies in asyncio's default thread pool, min(32, cores + 4) threads).  Both sides get
      all the cores, so this is the ceiling for sign-ins on this machine whatever the worker
      count; the ratio is the share of it the HTTP service keeps (the server also spends CPU
      on HTTP, JSON, JWT signing and Postgres, and wrk runs on the same cores).
  (b) bare asyncpg: the user row by email (`select * from auth.users where email = $1`),
      16 at a time through a pool of 16 — the least database work a sign-in or refresh does.
  (c) bare asyncpg: one statement that revokes a live refresh token and inserts its child,
      committed — the least a refresh grant must write — 16 at a time.
Prints requests/s, p50/p99 and the ratios last.  With --rounds R, every figure is the median
of R rounds.

    python bench/auth.py [--seconds 10] [--workers 2] [--rounds 1]  (needs wrk: apt-get install wrk)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import signal
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import bcrypt
import httpx
from load import free_port, start_supalite, wait_http
from load import wrk as run_wrk

CONCURRENCY = 16
WRK_THREADS = 2
USERS = 16
PASSWORD = "bench-password-1"
JWT_SECRET = "bench-secret-bench-secret-bench-secret-00"

CONFIG = """
[api]
port = {api_port}

[db]
port = {db_port}

[auth]
enable_signup = true

# Unlimited: the bench comes from one address, and limits are not what is measured here.
[auth.rate_limit]
sign_in_sign_ups = 0
token_refresh = 0
token_verifications = 0
"""

SIGNIN_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"email":"bench%d@example.com","password":"PASSWORD"}',
                             counter % USERS)
  return wrk.format(nil, nil, nil, body)
end
""".replace("PASSWORD", PASSWORD).replace("USERS", str(USERS))

# Each wrk thread reads its share of the seeded refresh tokens, presents one per request and
# queues the token each response hands back: every request is a real rotation.
REFRESH_LUA = """
local nthreads = 0
function setup(thread)
  thread:set("id", nthreads)
  nthreads = nthreads + 1
end
function init(args)
  queue = {}
  local i = 0
  for line in io.lines("TOKENS") do
    if i % THREADS == id then table.insert(queue, line) end
    i = i + 1
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end
function request()
  local token = table.remove(queue, 1)
  return wrk.format(nil, nil, nil, '{"refresh_token":"' .. token .. '"}')
end
function response(status, headers, body)
  local token = string.match(body, '"refresh_token":"([^"]+)"')
  if token then table.insert(queue, token) end
end
"""


def wrk(url: str, headers: dict[str, str], script: str, seconds: int) -> dict[str, float]:
    return run_wrk(url, headers, script, seconds, threads=WRK_THREADS, connections=CONCURRENCY,
                   request_timeout="30s")  # fmt: skip


def bare_bcrypt(seconds: float) -> dict[str, float]:
    """checkpw at cost 10 ($2a$, as GoTrue's hashes) on CONCURRENCY threads."""
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(10, prefix=b"2a"))
    deadline = time.perf_counter() + seconds

    def worker(_: int) -> list[float]:
        out = []
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            assert bcrypt.checkpw(PASSWORD.encode(), hashed)
            out.append((time.perf_counter() - t0) * 1000)
        return out

    start = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as ex:
        latencies = sorted(x for part in ex.map(worker, range(CONCURRENCY)) for x in part)
    elapsed = time.perf_counter() - start
    return {
        "rps": len(latencies) / elapsed,
        "p50": statistics.median(latencies),
        "p99": latencies[int(len(latencies) * 0.99)],
    }


async def bare_pool(
    db_url: str, seconds: float, op: Callable[[asyncpg.Connection, int], Awaitable[None]]
) -> dict[str, float]:
    """`op(conn, n)` CONCURRENCY at a time through a pool of that size, for `seconds`."""
    pool = await asyncpg.create_pool(db_url, min_size=CONCURRENCY, max_size=CONCURRENCY)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(n: int) -> None:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            async with pool.acquire() as conn:
                await op(conn, n)
            latencies.append((time.perf_counter() - t0) * 1000)
            n += CONCURRENCY

    start = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(CONCURRENCY)))
    elapsed = time.perf_counter() - start
    await pool.close()
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50": statistics.median(latencies),
        "p99": latencies[int(len(latencies) * 0.99)],
    }


async def bare_select(db_url: str, seconds: float) -> dict[str, float]:
    """The user row by email: the least database work a sign-in or refresh does."""

    async def op(conn: asyncpg.Connection, n: int) -> None:
        row = await conn.fetchrow(
            "select * from auth.users where email = $1", f"bench{n % USERS}@example.com"
        )
        assert row is not None

    return await bare_pool(db_url, seconds, op)


# The least a refresh grant must write: revoke the presented token and insert its child, one
# statement that commits.
ROTATE = """
with r as (
  update auth.refresh_tokens set revoked = true, updated_at = now()
  where token = $1 and revoked = false returning user_id, session_id, token
)
insert into auth.refresh_tokens (token, user_id, revoked, parent, session_id, created_at,
                                 updated_at)
select $2, user_id, false, token, session_id, now(), now() from r returning token
"""


async def bare_rotate(db_url: str, seconds: float, tokens: list[str]) -> dict[str, float]:
    """ROTATE on live tokens, each worker rotating its own share, as the wrk threads do."""
    queues = [tokens[i::CONCURRENCY] for i in range(CONCURRENCY)]

    async def op(conn: asyncpg.Connection, n: int) -> None:
        queue = queues[n % CONCURRENCY]
        issued = await conn.fetchval(ROTATE, queue.pop(0), secrets.token_urlsafe(9))
        assert issued is not None
        queue.append(issued)

    return await bare_pool(db_url, seconds, op)


def create_users(auth: str, service: str) -> None:
    """USERS confirmed users, through the admin API."""
    admin = {"apikey": service, "Authorization": f"Bearer {service}"}

    def create(i: int) -> None:
        body = {"email": f"bench{i}@example.com", "password": PASSWORD, "email_confirm": True}
        httpx.post(f"{auth}/admin/users", json=body, headers=admin, timeout=120).raise_for_status()

    with ThreadPoolExecutor(CONCURRENCY) as ex:
        list(ex.map(create, range(USERS)))


def sign_ins(auth: str, anon: str, n: int) -> list[dict[str, str]]:
    """n new sessions (round-robin over the users): their token responses."""

    def sign_in(i: int) -> dict[str, str]:
        r = httpx.post(
            f"{auth}/token?grant_type=password",
            json={"email": f"bench{i % USERS}@example.com", "password": PASSWORD},
            headers={"apikey": anon},
            timeout=120,
        )
        r.raise_for_status()
        out: dict[str, str] = r.json()
        return out

    with ThreadPoolExecutor(CONCURRENCY) as ex:
        return list(ex.map(sign_in, range(n)))


def median_of(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("bench/auth.py needs wrk (apt-get install wrk)")

    figures: dict[str, list[dict[str, float]]] = {}

    def add(name: str, result: dict[str, float]) -> None:
        figures.setdefault(name, []).append(result)

    with tempfile.TemporaryDirectory(prefix="supalite-bench-auth-") as d:
        project = Path(d)
        (project / "supabase").mkdir()
        api_port, db_port = free_port(), free_port()
        (project / "supabase" / "config.toml").write_text(
            CONFIG.format(api_port=api_port, db_port=db_port)
        )
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SUPALITE_", "GOTRUE_", "SMTP_"))
               and k not in ("DATABASE_URL", "JWT_SECRET", "PORT", "SITE_URL")}  # fmt: skip
        env["SUPALITE_JWT_SECRET"] = JWT_SECRET
        server, keys = start_supalite(project, env, "--workers", str(args.workers))
        anon, service = keys["anon key"], keys["service_role key"]
        db_url = f"postgresql://postgres:postgres@127.0.0.1:{db_port}/postgres"
        auth = f"http://127.0.0.1:{api_port}/auth/v1"
        try:
            wait_http(f"{auth}/health")
            create_users(auth, service)
            access = sign_ins(auth, anon, 1)[0]["access_token"]
            tokens_file = project / "tokens.txt"
            h = {"apikey": anon}
            signin_url = f"{auth}/token?grant_type=password"
            refresh_url = f"{auth}/token?grant_type=refresh_token"
            user_h = {**h, "Authorization": f"Bearer {access}"}
            refresh_lua = REFRESH_LUA.replace("TOKENS", str(tokens_file)).replace(
                "THREADS", str(WRK_THREADS)
            )
            wrk(f"{auth}/user", user_h, "", 2)  # warm-up: pools, caches
            for _ in range(args.rounds):
                # Each workload runs right next to its baseline, so that both see the same
                # machine (other load on the box shifts both alike).
                add("sign-in", wrk(signin_url, h, SIGNIN_LUA, args.seconds))
                add("bcrypt", bare_bcrypt(args.seconds))
                # Live refresh tokens, 4 per connection so no wrk thread's queue runs dry.
                live = sign_ins(auth, anon, 4 * CONCURRENCY)
                tokens_file.write_text("".join(t["refresh_token"] + "\n" for t in live))
                add("refresh", wrk(refresh_url, h, refresh_lua, args.seconds))
                add("select", asyncio.run(bare_select(db_url, args.seconds)))
                live = sign_ins(auth, anon, 4 * CONCURRENCY)
                rotate = bare_rotate(db_url, args.seconds, [t["refresh_token"] for t in live])
                add("rotate", asyncio.run(rotate))
                add("GET /user", wrk(f"{auth}/user", user_h, "", args.seconds))
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(60)

    f = {name: median_of(rounds) for name, rounds in figures.items()}
    cores = os.cpu_count()
    print(
        f"concurrency {CONCURRENCY}, {args.seconds}s per run, median of {args.rounds} round(s);"
        f" supalite --workers {args.workers}; bcrypt on {CONCURRENCY} threads; {cores} cores;"
        " wrk on loopback"
    )
    print(f"{'workload':<34} {'req/s':>9} {'p50 ms':>9} {'p99 ms':>9}")
    rows = [
        ("supalite password sign-in", "sign-in"),
        ("supalite refresh grant", "refresh"),
        ("supalite GET /auth/v1/user", "GET /user"),
        ("bare bcrypt checkpw (cost 10)", "bcrypt"),
        ("bare asyncpg select user by email", "select"),
        ("bare asyncpg rotate a token", "rotate"),
    ]
    for label, key in rows:
        r = f[key]
        print(f"{label:<34} {r['rps']:>9.1f} {r['p50']:>9.2f} {r['p99']:>9.2f}")
    print()
    ratios = [
        ("sign-in / bare bcrypt", f["sign-in"]["rps"] / f["bcrypt"]["rps"]),
        ("sign-in / bare select", f["sign-in"]["rps"] / f["select"]["rps"]),
        ("refresh / bare select", f["refresh"]["rps"] / f["select"]["rps"]),
        ("refresh / bare rotate", f["refresh"]["rps"] / f["rotate"]["rps"]),
        ("GET /user / bare select", f["GET /user"]["rps"] / f["select"]["rps"]),
    ]
    for label, ratio in ratios:
        print(f"ratio {label:<32} {ratio:.3f}x")
    print(f"p99 GET /auth/v1/user{'':<21} {f['GET /user']['p99']:.2f} ms")


if __name__ == "__main__":
    main()
