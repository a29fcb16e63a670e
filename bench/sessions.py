"""Session store round trips against the bare driver doing the same statements.

One round trip = create + get + update of one session, sequential (one client), with
encryption on.  Per backend, in the same run, the bare driver issues the same statements
(asyncpg, sqlite3, redis-py, httpx for the Data API, a locked JSON file) without the store's
validation, mapping and encryption.  Then the cost of encrypting one value (an OAuth token
set, ~300 bytes of JSON) against serialising it alone.

    python bench/sessions.py [--rounds 1000]          (needs redis-server; starts supalite)
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import redis.asyncio as aioredis
from load import free_port, start_supalite

from supalite.sessions import migrations
from supalite.sessions.backends.file import FileStore
from supalite.sessions.backends.memory import MemoryStore
from supalite.sessions.backends.postgres import PostgresStore
from supalite.sessions.backends.redis import RedisStore
from supalite.sessions.backends.sqlite import SqliteStore
from supalite.sessions.backends.supabase import SupabaseStore
from supalite.sessions.crypto import Cipher
from supalite.sessions.models import Session
from supalite.sessions.store import SessionStore

KEY = bytes.fromhex("00112233445566778899aabbccddeeff" * 2)
TOKENS = {
    "access_token": "eyJhbGciOiJIUzI1NiJ9." + "x" * 180,
    "token_type": "Bearer",
    "expires_in": 3600,
    "refresh_token": "rt_" + "y" * 40,
    "scope": "read write",
}
HEADERS = {"Authorization": "Bearer " + "h" * 40}
SEALED_HEADERS = len(Cipher(KEY).seal(HEADERS))

Round = Callable[[int], Awaitable[None]]


async def timed(fn: Round, rounds: int) -> dict[str, float]:
    for i in range(min(50, rounds)):  # warm-up: pools, prepared statements, page cache
        await fn(-1 - i)
    lat = []
    for i in range(rounds):
        s = time.perf_counter()
        await fn(i)
        lat.append((time.perf_counter() - s) * 1000)
    return {"rps": 1000 * len(lat) / sum(lat), "p50": statistics.median(lat)}


async def paired(
    ours: Round, bare: Round, rounds: int, blocks: int = 10
) -> tuple[dict[str, float], dict[str, float]]:
    """Store and bare driver in alternating blocks, so load from elsewhere on the machine
    falls on both alike."""
    for i in range(min(50, rounds)):
        await ours(-1 - i)
        await bare(-1 - i)
    lat: dict[str, list[float]] = {"ours": [], "bare": []}
    per = max(1, rounds // blocks)
    for b in range(blocks):
        for name, fn in (
            (("ours", ours), ("bare", bare)) if b % 2 == 0 else (("bare", bare), ("ours", ours))
        ):
            for i in range(b * per, (b + 1) * per):
                s = time.perf_counter()
                await fn(i)
                lat[name].append((time.perf_counter() - s) * 1000)

    def figures(xs: list[float]) -> dict[str, float]:
        return {"rps": 1000 * len(xs) / sum(xs), "p50": statistics.median(xs)}

    return figures(lat["ours"]), figures(lat["bare"])


def store_round(store: SessionStore, tag: str) -> Round:
    async def go(i: int) -> None:
        sid = f"{tag}-{i}"
        await store.create(Session(sid, "bench", "https://m/mcp", "https://a/cb", headers=HEADERS))
        await store.get("bench", sid)
        await store.update("bench", sid, {"status": "active"})

    return go


# ------------------------------------------------------------------ bare drivers


def bare_postgres(pool: asyncpg.Pool, tag: str) -> Round:
    async def go(i: int) -> None:
        sid, now = f"{tag}-{i}", datetime.now(UTC)
        async with pool.acquire() as c, c.transaction():
            await c.execute(
                "delete from public.mcp_sessions where session_id = $1 and expires_at < $2",
                sid,
                now,
            )
            await c.execute(
                "insert into public.mcp_sessions (session_id, user_id, server_url,"
                " transport_type, callback_url, created_at, updated_at, expires_at, status,"
                " headers) values ($1, 'bench', 'https://m/mcp', 'streamable-http',"
                " 'https://a/cb', $2, $2, $3, 'pending', $4::jsonb)",
                sid,
                now,
                now + timedelta(minutes=10),
                json.dumps(HEADERS),
            )
        async with pool.acquire() as c:
            await c.fetchrow(
                "select *, headers::text from public.mcp_sessions where user_id ="
                " 'bench' and session_id = $1 and (expires_at is null or"
                " expires_at >= $2)",
                sid,
                now,
            )
        async with pool.acquire() as c:
            await c.fetchval(
                "update public.mcp_sessions set status = 'active', updated_at = $2,"
                " expires_at = null where user_id = 'bench' and session_id = $1"
                " and (expires_at is null or expires_at >= $2) returning 1",
                sid,
                now,
            )

    return go


def bare_sqlite(path: Path, tag: str) -> Round:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("pragma journal_mode = wal")

    def create(sid: str, now: int) -> None:
        db.execute("begin immediate")
        db.execute("delete from mcp_sessions where session_id = ? and expires_at < ?", (sid, now))
        db.execute(
            "insert into mcp_sessions (session_id, user_id, server_url, transport_type,"
            " callback_url, created_at, updated_at, expires_at, status, headers) values"
            " (?, 'bench', 'https://m/mcp', 'streamable-http', 'https://a/cb', ?, ?, ?,"
            " 'pending', ?)",
            (sid, now, now, now + 600000, json.dumps(HEADERS)),
        )
        db.execute("commit")

    def get(sid: str) -> None:
        db.execute(
            "select * from mcp_sessions where user_id = 'bench' and session_id = ?", (sid,)
        ).fetchone()

    def update(sid: str, now: int) -> None:
        db.execute("begin immediate")
        db.execute(
            "update mcp_sessions set status = 'active', updated_at = ?, expires_at = null"
            " where user_id = 'bench' and session_id = ?",
            (now, sid),
        )
        db.execute("commit")

    async def go(i: int) -> None:
        # One worker-thread hop per call, as the store makes.
        sid, now = f"{tag}-{i}", int(time.time() * 1000)
        await asyncio.to_thread(create, sid, now)
        await asyncio.to_thread(get, sid)
        await asyncio.to_thread(update, sid, now)

    return go


def bare_redis(r: aioredis.Redis, tag: str) -> Round:
    async def go(i: int) -> None:
        sid, now = f"{tag}-{i}", int(time.time() * 1000)
        key = f"bare:session:bench:{sid}"
        p = r.pipeline(transaction=True)
        p.hset(
            key,
            mapping={
                "session_id": json.dumps(sid),
                "status": '"pending"',
                "headers": json.dumps(HEADERS),
                "updated_at": now,
            },
        )
        p.pexpireat(key, now + 600000)
        p.sadd("bare:userId:bench:sessions", sid)
        await p.execute()
        await r.hgetall(key)
        p = r.pipeline(transaction=True)
        p.hset(key, mapping={"status": '"active"', "updated_at": now})
        p.pexpireat(key, now + 2592000000)
        await p.execute()

    return go


def bare_rest(http: httpx.AsyncClient, tag: str) -> Round:
    async def go(i: int) -> None:
        sid = f"{tag}-{i}"
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        await http.delete(
            "/mcp_sessions", params={"session_id": f"eq.{sid}", "expires_at": f"lt.{now}"}
        )
        await http.post(
            "/mcp_sessions",
            json={
                "session_id": sid,
                "user_id": "bench",
                "server_url": "https://m/mcp",
                "transport_type": "streamable-http",
                "callback_url": "https://a/cb",
                "status": "pending",
                "headers": HEADERS,
            },
            headers={"Prefer": "return=minimal"},
        )
        await http.get(
            "/mcp_sessions",
            params={"user_id": "eq.bench", "session_id": f"eq.{sid}", "select": "*"},
        )
        await http.get(
            "/mcp_sessions",
            params={"user_id": "eq.bench", "session_id": f"eq.{sid}", "select": "*"},
        )
        await http.patch(
            "/mcp_sessions",
            params={"user_id": "eq.bench", "session_id": f"eq.{sid}", "select": "session_id"},
            json={"status": "active", "updated_at": now, "expires_at": None},
            headers={"Prefer": "return=representation"},
        )

    return go


def bare_file(path: Path, tag: str) -> Round:
    lock = path.with_name(path.name + ".lock")

    def rw(change: Callable[[dict[str, dict[str, object]]], None] | None) -> None:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            data = json.loads(path.read_text()) if path.exists() else {"sessions": {}}
            if change is not None:
                change(data)
                tmp = path.with_name(".bare.tmp")
                with open(tmp, "w") as f:
                    json.dump(data, f)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
        finally:
            os.close(fd)

    async def go(i: int) -> None:
        # One worker-thread hop per call, as the store makes.
        sid = f"{tag}-{i}"
        # The same record the store writes (every field; headers as long as their ciphertext).
        record = {
            "session_id": sid,
            "user_id": "bench",
            "server_url": "https://m/mcp",
            "callback_url": "https://a/cb",
            "transport_type": "streamable-http",
            "server_id": None,
            "server_name": None,
            "status": "pending",
            "headers": "x" * SEALED_HEADERS,
            "auth_url": None,
            "created_at": 0,
            "updated_at": 0,
            "expires_at": 0,
        }
        await asyncio.to_thread(rw, lambda d: d["sessions"].__setitem__(sid, record))
        await asyncio.to_thread(rw, None)
        await asyncio.to_thread(
            rw,
            lambda d: d["sessions"][sid].__setitem__("status", "active"),  # type: ignore[index]
        )

    return go


# ------------------------------------------------------------------ main


def encryption_cost(n: int = 20000) -> dict[str, float]:
    c = Cipher(KEY)
    t0 = time.perf_counter()
    for _ in range(n):
        json.dumps(TOKENS)
    plain = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    sealed = [c.seal(TOKENS) for _ in range(n)]
    seal = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    for s in sealed:
        c.open(s)
    opened = (time.perf_counter() - t0) / n * 1e6
    return {
        "json": plain,
        "seal": seal,
        "open": opened,
        "size": len(sealed[0]),
        "plain_size": len(json.dumps(TOKENS)),
    }


async def run(
    args: argparse.Namespace, db_url: str, api: str, service: str, redis_url: str, work: Path
) -> list[tuple[str, dict[str, float], dict[str, float] | None]]:
    cipher = Cipher(KEY)
    rows: list[tuple[str, dict[str, float], dict[str, float] | None]] = []
    n = args.rounds

    want = set(args.only.split(",")) if args.only else None

    def on(name: str) -> bool:
        return want is None or name in want

    mem = MemoryStore()
    if on("memory"):
        rows.append(("memory", await timed(store_round(mem, "m"), n), None))

    fs = FileStore(work / "s.json", cipher=cipher)
    if on("file"):
        rows.append(
            (
                "file",
                *(await paired(store_round(fs, "f"), bare_file(work / "bare.json", "f"), n // 4)),
            )
        )

    sq = SqliteStore(work / "s.db", cipher=cipher)
    await sq.init()
    if on("sqlite"):
        rows.append(
            (
                "sqlite",
                *(await paired(store_round(sq, "q"), bare_sqlite(work / "s.db", "bq"), n)),
            )
        )
    await sq.close()

    pg = PostgresStore(db_url, cipher=cipher)
    await pg.clear_all()
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=10)
    if on("postgres"):
        rows.append(
            (
                "postgres",
                *(await paired(store_round(pg, "p"), bare_postgres(pool, "bp"), n)),
            )
        )
    await pool.close()

    rs = RedisStore(redis_url, prefix="bench", cipher=cipher)
    r = aioredis.Redis.from_url(redis_url)
    if on("redis"):
        rows.append(
            (
                "redis",
                *(await paired(store_round(rs, "r"), bare_redis(r, "br"), n)),
            )
        )
    await r.aclose()
    await rs.close()

    sb = SupabaseStore(api, service, cipher=cipher)
    http = httpx.AsyncClient(
        base_url=api + "/rest/v1", headers={"apikey": service, "Authorization": f"Bearer {service}"}
    )
    if on("supabase"):
        rows.append(
            (
                "supabase",
                *(await paired(store_round(sb, "s"), bare_rest(http, "bs"), n // 4)),
            )
        )
    await http.aclose()
    await sb.close()
    await pg.clear_all()
    await pg.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=1000)
    ap.add_argument("--only", default="", help="comma-separated backends (default: all)")
    args = ap.parse_args()
    if not shutil.which("redis-server"):
        raise SystemExit("bench/sessions.py needs redis-server (apt-get install redis-server)")
    with tempfile.TemporaryDirectory(prefix="supalite-bench-sessions-") as d:
        work = Path(d)
        mig = work / "supabase" / "migrations"
        mig.mkdir(parents=True)
        for f in migrations.files():
            if "cron" not in f.name:  # the sweep is not what is measured
                shutil.copy(f, mig / f.name)
        api_port, db_port, redis_port = free_port(), free_port(), free_port()
        env = {**os.environ, "SUPALITE_PORT": str(api_port), "SUPALITE_DB_PORT": str(db_port)}
        server, info = start_supalite(work, env)
        redis_proc = subprocess.Popen(
            ["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        try:
            time.sleep(0.3)  # redis-server accepting
            rows = asyncio.run(
                run(
                    args,
                    info["DB URL"],
                    info["API URL"],
                    info["service_role key"],
                    f"redis://127.0.0.1:{redis_port}/0",
                    work,
                )
            )
        finally:
            server.terminate()
            redis_proc.terminate()
            server.wait(60)
            redis_proc.wait(10)
    enc = encryption_cost()
    print(
        f"create+get+update round trips, one client, sequential, encryption on "
        f"({args.rounds} rounds; file and supabase {args.rounds // 4})"
    )
    print(f"{'backend':<10} {'store rt/s':>11} {'p50 ms':>8} {'bare rt/s':>10} {'p50 ms':>8}")
    for name, ours, bare in rows:
        b = f"{bare['rps']:>10.0f} {bare['p50']:>8.3f}" if bare else f"{'-':>10} {'-':>8}"
        print(f"{name:<10} {ours['rps']:>11.0f} {ours['p50']:>8.3f} {b}")
    print()
    print(
        f"encryption per value ({enc['plain_size']} B of JSON -> {enc['size']} B stored):"
        f" json.dumps {enc['json']:.1f} us, seal {enc['seal']:.1f} us,"
        f" open {enc['open']:.1f} us"
    )
    for name, ours, bare in rows:
        if bare:
            print(f"ratio {name:<9} store / bare driver: {ours['rps'] / bare['rps']:.2f}x")


if __name__ == "__main__":
    main()
