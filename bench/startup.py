"""Start-up time and idle memory of supalite (API + embedded PostgreSQL).

Cold start: an empty project folder (initdb, bootstrap, seed) until GET /health answers 200.
Warm start: the same folder again.  Memory: proportional set size (PSS, so pages shared
between PostgreSQL's processes count once) of supalite and every PostgreSQL process, idle.
Baseline in the same run: the bare PostgreSQL server alone (same binaries), started on the
same cluster, its ready time and idle PSS.  Prints medians and the ratios last.

    python bench/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from load import free_port

from supalite.db.embedded import EmbeddedPostgres


def pss_kib(pid: int) -> int:
    """PSS of a process and all its descendants, in KiB."""
    total = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1])
    except OSError:
        return 0
    children: list[str] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            children += (task / "children").read_text().split()
    return total + sum(pss_kib(int(c)) for c in children)


def start_supalite(project: Path, port: int, db_port: int) -> tuple[subprocess.Popen[bytes], float]:
    env = {**os.environ, "SUPALITE_PORT": str(port), "SUPALITE_DB_PORT": str(db_port)}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "supalite.cli", "start"], cwd=project, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}/health"
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return proc, time.perf_counter() - t0
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"supalite exited with {proc.returncode}")
        if time.perf_counter() - t0 > 120:
            proc.kill()
            raise SystemExit("supalite did not become ready in 120 s")
        time.sleep(0.01)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    proc.wait(60)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--idle-seconds", type=float, default=3.0)
    args = ap.parse_args()

    cold, warm, mem, pg_ready, pg_mem = [], [], [], [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="supalite-bench-") as d:
            project = Path(d)
            port, db_port = free_port(), free_port()
            proc, t = start_supalite(project, port, db_port)
            cold.append(t)
            stop(proc)
            proc, t = start_supalite(project, port, db_port)
            warm.append(t)
            time.sleep(args.idle_seconds)
            mem.append(pss_kib(proc.pid) / 1024)
            stop(proc)

            # Baseline: the bare server on the same cluster.
            pg = EmbeddedPostgres(project / "supabase" / ".supalite", free_port())
            t0 = time.perf_counter()
            pg.start()
            pg_ready.append(time.perf_counter() - t0)
            time.sleep(args.idle_seconds)
            assert pg.pid is not None
            pg_mem.append(pss_kib(pg.pid) / 1024)
            pg.stop()

    med = statistics.median
    print(f"database binaries: {pg.binaries.origin} PostgreSQL {pg.binaries.version}")
    print(f"cold start to ready (median of {args.runs}): {med(cold):.2f} s")
    print(f"warm start to ready (median of {args.runs}): {med(warm):.2f} s   target < 2 s")
    print(f"idle memory, supalite + PostgreSQL (PSS):   {med(mem):.1f} MiB   target < 150 MiB")
    print(f"baseline: bare PostgreSQL ready {med(pg_ready):.2f} s, idle {med(pg_mem):.1f} MiB")
    print(f"ratio warm start / bare PostgreSQL start: {med(warm) / med(pg_ready):.1f}x")
    print(f"ratio idle memory / bare PostgreSQL:      {med(mem) / med(pg_mem):.1f}x")


if __name__ == "__main__":
    main()
