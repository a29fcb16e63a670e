"""Workers belong to the server: started on demand, gone after shutdown."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.functions.conftest import kill_leftover_workers, serve, worker_pids


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_no_worker_outlives_the_server(tmp_path: Path, sig: int) -> None:
    server = serve(tmp_path)
    try:
        assert server.proc is not None
        assert worker_pids(server.proc.pid) == set()  # none before the first call
        key = server.anon_key
        with httpx.Client(timeout=30) as c:
            for name in ("pid", "hello", "env", "ts-default"):  # Python and Deno workers
                r = c.post(f"{server.url}/functions/v1/{name}", json={},
                           headers={"apikey": key, "Authorization": f"Bearer {key}"})  # fmt: skip
                assert r.status_code == 200, r.text
            r = c.get(f"{server.url}/functions/v1/boom",
                      headers={"apikey": key, "Authorization": f"Bearer {key}"})  # fmt: skip
            assert r.status_code == 500
        workers = worker_pids(server.proc.pid)
        assert len(workers) == 5
        # The function's traceback reaches the request log (from the worker's pipe).
        log = tmp_path / "supabase" / ".supalite" / "logs" / "requests.jsonl"
        deadline = time.monotonic() + 10
        while "ValueError: boom-detail-4711" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.05)
        server.stop(sig)
        deadline = time.monotonic() + 10
        alive = workers
        while alive and time.monotonic() < deadline:
            alive = {p for p in alive if psutil.pid_exists(p)
                     and psutil.Process(p).status() != psutil.STATUS_ZOMBIE}  # fmt: skip
            time.sleep(0.05)
        assert alive == set()
    finally:
        server.stop()
        kill_leftover_workers(tmp_path)
