"""Functions: cold start and warm invocation of a trivial Python and TypeScript function, against
a plain Starlette endpoint doing the same work, in the same run.

The function returns `{"ok": true}`; the baseline is that handler as a Starlette route in its own
uvicorn process (what the function would be without supalite in front: no gateway, no JWT
check, no hop to a worker process).  Warm: wrk on loopback at concurrency 16.  Cold: the first
call after the function's file changed (a fresh worker process imports it), median of N.

    python bench/functions.py [--seconds 10] [--cold 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from load import free_port, start_supalite, wait_http, wrk

HERE = Path(__file__).resolve().parent
PY_FUNCTION = "async def handler(request):\n    return {'ok': True}\n"
TS_FUNCTION = "Deno.serve(() => Response.json({ ok: true }))\n"
BASELINE = """
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def trivial(request):
    return JSONResponse({"ok": True})

app = Starlette(routes=[Route("/trivial", trivial, methods=["GET", "POST"])])
"""


def cold_starts(url: str, headers: dict[str, str], entry: Path, n: int) -> list[float]:
    """ms for the first call served by a fresh worker (the file changed: new workers)."""
    out = []
    with httpx.Client(timeout=60) as c:
        for i in range(n):
            st = entry.stat()
            os.utime(entry, (st.st_atime, st.st_mtime + 1 + i))
            t0 = time.perf_counter()
            r = c.get(url, headers=headers)
            out.append((time.perf_counter() - t0) * 1000)
            if r.status_code != 200:
                raise SystemExit(f"{url}: {r.status_code} {r.text}")
            time.sleep(0.5)  # let the retired worker stop
    return out


def warm_direct(url: str, headers: dict[str, str], n: int = 200) -> float:
    """p50 ms of sequential calls: latency without queueing."""
    with httpx.Client(timeout=30) as c:
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            c.get(url, headers=headers)
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--cold", type=int, default=5)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("bench/functions.py needs wrk (apt-get install wrk)")

    with tempfile.TemporaryDirectory(prefix="supalite-bench-fn-") as d:
        project = Path(d)
        functions = project / "supabase" / "functions"
        (functions / "trivial").mkdir(parents=True)
        (functions / "trivial" / "main.py").write_text(PY_FUNCTION)
        (functions / "ts-trivial").mkdir()
        (functions / "ts-trivial" / "index.ts").write_text(TS_FUNCTION)
        (project / "baseline_app.py").write_text(BASELINE)
        api_port, db_port, base_port = free_port(), free_port(), free_port()
        env = {**os.environ, "SUPALITE_PORT": str(api_port), "SUPALITE_DB_PORT": str(db_port)}
        server, banner = start_supalite(project, env)
        anon = banner["anon key"]
        baseline = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "baseline_app:app", "--port", str(base_port),
             "--log-level", "warning", "--no-access-log"], cwd=project,
        )  # fmt: skip
        try:
            fn = f"http://127.0.0.1:{api_port}/functions/v1"
            base = f"http://127.0.0.1:{base_port}/trivial"
            h = {"apikey": anon, "Authorization": f"Bearer {anon}"}
            wait_http(f"http://127.0.0.1:{api_port}/health")
            wait_http(base)
            cold = {
                "python": cold_starts(f"{fn}/trivial", h, functions / "trivial" / "main.py",
                                      args.cold),
                "typescript": cold_starts(f"{fn}/ts-trivial", h,
                                          functions / "ts-trivial" / "index.ts", args.cold),
            }  # fmt: skip
            runs = {"python": f"{fn}/trivial", "typescript": f"{fn}/ts-trivial",
                    "plain Starlette": base}  # fmt: skip
            warm = {}
            direct = {}
            for label, url in runs.items():
                hdrs = h if url != base else {}
                wrk(url, hdrs, "", 2, connections=16)  # warm-up: both workers started
                warm[label] = wrk(url, hdrs, "", args.seconds, connections=16)
                direct[label] = warm_direct(url, hdrs)
        finally:
            baseline.send_signal(signal.SIGINT)
            server.send_signal(signal.SIGINT)
            baseline.wait(30)
            server.wait(60)

    print(f"trivial function returning {{'ok': true}}; wrk on loopback, concurrency 16, "
          f"{args.seconds}s per run")  # fmt: skip
    print(f"{'':<16} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'1-by-1 p50 ms':>14}")
    for label, r in warm.items():
        print(f"{label:<16} {r['rps']:>9.0f} {r['p50']:>8.2f} {r['p99']:>8.2f}"
              f" {direct[label]:>14.2f}")  # fmt: skip
    print()
    for label, times in cold.items():
        print(f"cold start {label:<11} median {statistics.median(times):7.1f} ms"
              f"  (min {min(times):.1f}, max {max(times):.1f}, n={len(times)})")  # fmt: skip
    print()
    plain = warm["plain Starlette"]
    for label in ("python", "typescript"):
        r = warm[label]
        print(f"ratio {label:<10} req/s function / plain: {r['rps'] / plain['rps']:.2f}x   "
              f"p50 overhead under load: {r['p50'] - plain['p50']:+.2f} ms   "
              f"1-by-1 overhead: {direct[label] - direct['plain Starlette']:+.2f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
