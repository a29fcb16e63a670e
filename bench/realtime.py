"""Realtime delivery: Postgres changes under RLS and broadcast fan-out, against baselines.

Workloads (load from a separate process on loopback, bounded in count and time):
  1. Postgres changes: N subscribers, each a distinct user under an RLS policy, on one table;
     a writer inserts R rows/s for S seconds.  Latency = writer's commit → delivery at each
     subscriber; delivered vs expected (must be 100%); the server's CPU per delivery (its
     process and its Postgres, from /proc), which the shared machine's load does not skew.
  2. Broadcast (not with --changes-only): N sockets on one topic; senders push R messages/s
     for S seconds (each sender within the project's eventsPerSecond); latency send →
     delivery, messages delivered/s.

Baselines in the same run: (a) raw LISTEN/NOTIFY with asyncpg (commit of an insert that
notifies → the listener hears it), (b) a bare `websockets` fan-out server with the same N
clients and senders.  Prints p50/p99 and the ratios last.

    python bench/realtime.py [--subscribers 200] [--rate 100] [--seconds 10] [--changes-only]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import jwt
import psutil
import websockets
from load import free_port, start_supalite, wait_http

SECRET = "bench-secret-bench-secret-bench-secret-00"
SCHEMA = """
create table public.rt_bench (id bigserial primary key, owner uuid not null, t float8 not null,
  body text);
alter table public.rt_bench enable row level security;
create policy "signed-in users read" on public.rt_bench for select to authenticated
  using (auth.role() = 'authenticated');
alter publication supabase_realtime add table public.rt_bench;
"""
SENDER_RATE = 8  # per sender socket: under the default eventsPerSecond (10)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def token(sub: str) -> str:
    now = int(time.time())
    claims = {"sub": sub, "role": "authenticated", "aud": "authenticated", "iat": now,
              "exp": now + 3600}  # fmt: skip
    return jwt.encode(claims, SECRET, algorithm="HS256")


async def _join(ws: Any, topic: str, config: dict[str, Any], access_token: str | None) -> None:
    base = {"broadcast": {"self": False}, "presence": {}, "postgres_changes": [], "private": False}
    payload: dict[str, Any] = {"config": {**base, **config}}
    if access_token:
        payload["access_token"] = access_token
    await ws.send(json.dumps({"topic": topic, "event": "phx_join", "payload": payload,
                              "ref": "1", "join_ref": "1"}))  # fmt: skip
    while True:
        m = json.loads(await ws.recv())
        if m["event"] == "phx_reply" and m["ref"] == "1":
            assert m["payload"]["status"] == "ok", m
            return


def tree_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds used so far by the server process and by its children (the embedded
    Postgres and its backends): what a delivery costs, whatever else the shared machine does."""
    root = psutil.Process(pid)
    own = root.cpu_times()
    children = 0.0
    for p in root.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            children += t.user + t.system
    return own.user + own.system, children


async def changes_load(
    ws_url: str, db_url: str, n: int, rate: int, seconds: int, server_pid: int
) -> dict[str, Any]:
    latencies: list[float] = []
    received = 0
    socks = []
    for _ in range(n):
        ws = await websockets.connect(ws_url, max_size=None, ping_interval=None)
        await _join(ws, f"realtime:rt-{uuid.uuid4().hex[:6]}", {"postgres_changes": [
            {"event": "INSERT", "schema": "public", "table": "rt_bench"}]},
            token(str(uuid.uuid4())))  # fmt: skip
        socks.append(ws)

    async def reader(ws: Any) -> None:
        nonlocal received
        async for raw in ws:
            m = json.loads(raw)
            if m["event"] == "postgres_changes":
                latencies.append(time.time() - m["payload"]["data"]["record"]["t"])
                received += 1

    readers = [asyncio.create_task(reader(ws)) for ws in socks]
    await asyncio.sleep(1)
    db = await asyncpg.connect(db_url)
    owner = str(uuid.uuid4())
    cpu, client_cpu, wall = tree_cpu(server_pid), time.process_time(), time.monotonic()
    sent = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        # The timestamp is taken at commit (statement end), as close as SQL gets.
        await db.execute("insert into rt_bench (owner, t, body) values ($1, "
                         "extract(epoch from clock_timestamp()), 'x')", owner)  # fmt: skip
        sent += 1
        await asyncio.sleep(max(0.0, start + sent / rate - time.monotonic()))
    deadline = time.monotonic() + 30
    while received < sent * n and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    end_cpu = tree_cpu(server_pid)
    cpu = (end_cpu[0] - cpu[0], end_cpu[1] - cpu[1])
    # The load process shares the machine: if it is near 100% of a core, it is what lags.
    client_load = (time.process_time() - client_cpu) / (time.monotonic() - wall)
    await db.close()
    for t in readers:
        t.cancel()
    for ws in socks:
        await ws.close()
    return {"expected": sent * n, "delivered": received, "lat": latencies, "cpu": cpu,
            "client_load": client_load}  # fmt: skip


async def notify_baseline(db_url: str, rate: int, seconds: int) -> dict[str, Any]:
    listener = await asyncpg.connect(db_url)
    writer = await asyncpg.connect(db_url)
    lat: list[float] = []
    await listener.add_listener("rt_bench_base",
                                lambda *a: lat.append(time.time() - float(a[3])))  # fmt: skip
    sent = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        await writer.execute(
            "select pg_notify('rt_bench_base', extract(epoch from clock_timestamp())::text)"
        )
        sent += 1
        await asyncio.sleep(max(0.0, start + sent / rate - time.monotonic()))
    await asyncio.sleep(1)
    await listener.close()
    await writer.close()
    return {"expected": sent, "delivered": len(lat), "lat": lat}


async def broadcast_load(
    ws_url: str, n: int, rate: int, seconds: int, phoenix: bool
) -> dict[str, Any]:
    topic = f"realtime:bench-{uuid.uuid4().hex[:6]}"
    lat: list[float] = []

    async def connect() -> Any:
        ws = await websockets.connect(ws_url, max_size=None, ping_interval=None)
        if phoenix:
            await _join(ws, topic, {}, None)
        return ws

    receivers = [await connect() for _ in range(n)]
    senders = [await connect() for _ in range(max(1, -(-rate // SENDER_RATE)))]

    async def reader(ws: Any) -> None:
        async for raw in ws:
            m = json.loads(raw)
            p = m["payload"]["payload"] if phoenix else m
            if "t" in p:
                lat.append(time.time() - p["t"])

    readers = [asyncio.create_task(reader(ws)) for ws in receivers]
    await asyncio.sleep(1)
    sent = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        ws = senders[sent % len(senders)]
        body = {"t": time.time()}
        msg = {"topic": topic, "event": "broadcast", "ref": None, "join_ref": "1",
               "payload": {"type": "broadcast", "event": "b", "payload": body}}  # fmt: skip
        await ws.send(json.dumps(msg if phoenix else body))
        sent += 1
        await asyncio.sleep(max(0.0, start + sent / rate - time.monotonic()))
    elapsed = time.monotonic() - start
    deadline = time.monotonic() + 20
    while len(lat) < sent * n and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    for t in readers:
        t.cancel()
    for ws in receivers + senders:
        await ws.close()
    return {"expected": sent * n, "delivered": len(lat), "lat": lat,
            "per_s": len(lat) / elapsed}  # fmt: skip


async def echo_server(port: int) -> None:
    """The broadcast baseline: every text frame goes to every other connected client."""
    clients: set[Any] = set()

    async def handler(ws: Any) -> None:
        clients.add(ws)
        try:
            async for raw in ws:
                websockets.broadcast([c for c in clients if c is not ws], raw)
        finally:
            clients.discard(ws)

    # Uncompressed, as supalite's (and Supabase's) sockets are.
    async with websockets.serve(handler, "127.0.0.1", port, max_size=None, ping_interval=None,
                                compression=None):  # fmt: skip
        await asyncio.Future()


def client_main(args: argparse.Namespace) -> None:
    async def run() -> dict[str, Any]:
        ours = await changes_load(args.ws_url, args.db_url, args.subscribers, args.rate,
                                  args.seconds, args.server_pid)  # fmt: skip
        base = await notify_baseline(args.db_url, args.rate, args.seconds)
        out = {"changes": ours, "notify": base}
        if not args.changes_only:
            out["broadcast"] = await broadcast_load(
                args.ws_url, args.subscribers, args.rate, args.seconds, True
            )
            out["echo"] = await broadcast_load(
                args.echo_url, args.subscribers, args.rate, args.seconds, False
            )
        return out

    print(json.dumps(asyncio.run(run())))


def report(name: str, r: dict[str, Any]) -> str:
    ms = [x * 1000 for x in r["lat"]]
    share = 100 * r["delivered"] / r["expected"] if r["expected"] else 0
    extra = f"  {r['per_s']:>9.0f} msg/s" if "per_s" in r else ""
    if "cpu" in r and r["delivered"]:
        py, pg = (1e6 * c / r["delivered"] for c in r["cpu"])
        extra += (f"\n{'':28} CPU per delivery: {py:.0f} µs supalite + {pg:.0f} µs Postgres;"
                  f" load process at {100 * r['client_load']:.0f}% of a core")  # fmt: skip
    return (f"{name:<28} p50 {pct(ms, 0.5):>7.2f} ms  p99 {pct(ms, 0.99):>7.2f} ms  "
            f"delivered {r['delivered']}/{r['expected']} ({share:.1f}%){extra}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--subscribers", type=int, default=200)
    ap.add_argument("--rate", type=int, default=100, help="rows (and broadcasts) per second")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--changes-only", action="store_true",
                    help="skip the broadcast workloads")  # fmt: skip
    ap.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--echo", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--ws-url", help=argparse.SUPPRESS)
    ap.add_argument("--echo-url", help=argparse.SUPPRESS)
    ap.add_argument("--db-url", help=argparse.SUPPRESS)
    ap.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        client_main(args)
        return
    if args.echo:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(echo_server(args.echo))
        return

    with tempfile.TemporaryDirectory(prefix="supalite-bench-rt-") as d:
        project = Path(d)
        (project / "supabase" / "migrations").mkdir(parents=True)
        (project / "supabase" / "migrations" / "20240101000000_bench.sql").write_text(SCHEMA)
        api_port, db_port, echo_port = free_port(), free_port(), free_port()
        # The subscribers join faster than the default 100 joins/s (averaged over a minute),
        # and may be more than the default 200 concurrent users.
        env = {**os.environ, "SUPALITE_PORT": str(api_port), "SUPALITE_DB_PORT": str(db_port),
               "SUPALITE_JWT_SECRET": SECRET, "TENANT_MAX_JOINS_PER_SECOND": "1000000",
               "TENANT_MAX_CONCURRENT_USERS": "1000000"}  # fmt: skip
        server, banner = start_supalite(project, env)
        anon = banner["anon key"]
        echo = subprocess.Popen([sys.executable, __file__, "--echo", str(echo_port)])
        try:
            wait_http(f"http://127.0.0.1:{api_port}/health")
            time.sleep(1)
            out = subprocess.run(
                [sys.executable, __file__, "--client", "--subscribers", str(args.subscribers),
                 "--rate", str(args.rate), "--seconds", str(args.seconds),
                 *(["--changes-only"] if args.changes_only else []),
                 "--ws-url", f"ws://127.0.0.1:{api_port}/realtime/v1/websocket?apikey={anon}"
                             "&vsn=1.0.0",
                 "--echo-url", f"ws://127.0.0.1:{echo_port}",
                 "--db-url", f"postgresql://postgres:postgres@127.0.0.1:{db_port}/postgres",
                 "--server-pid", str(server.pid)],
                capture_output=True, text=True, timeout=20 * args.seconds + 300,
            )  # fmt: skip
            if out.returncode != 0:
                raise SystemExit(f"load process failed:\n{out.stderr}")
            r = json.loads(out.stdout.strip().splitlines()[-1])
        finally:
            echo.send_signal(signal.SIGINT)
            server.send_signal(signal.SIGINT)
            try:
                echo.wait(10)
            except subprocess.TimeoutExpired:  # it can hang closing sockets; it is only a baseline
                echo.kill()
                echo.wait()
            server.wait(60)

    print(
        f"{args.subscribers} subscribers, {args.rate}/s for {args.seconds}s, one supalite process"
    )
    print(report("changes (RLS, distinct users)", r["changes"]))
    print(report("LISTEN/NOTIFY, 1 listener", r["notify"]))
    if "broadcast" in r:
        print(report("broadcast fan-out", r["broadcast"]))
        print(report("bare websockets fan-out", r["echo"]))
    print()
    c50 = statistics.median(r["changes"]["lat"]) if r["changes"]["lat"] else float("nan")
    n50 = statistics.median(r["notify"]["lat"]) if r["notify"]["lat"] else float("nan")
    print(f"ratio changes p50 / LISTEN-NOTIFY p50: {c50 / n50:.1f}x")
    if "broadcast" in r:
        print(f"ratio broadcast msg/s / bare websockets msg/s: "
              f"{r['broadcast']['per_s'] / r['echo']['per_s']:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
