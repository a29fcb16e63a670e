"""Without Deno, TypeScript functions answer a clear 503 and Python functions still work."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.functions.conftest import kill_leftover_workers, serve


def test_typescript_without_deno_is_a_clear_503(tmp_path: Path) -> None:
    server = serve(tmp_path, env={"SUPALITE_DENO": "/nonexistent/deno"})
    try:
        key = server.anon_key
        headers = {"apikey": key, "Authorization": f"Bearer {key}"}
        with httpx.Client(timeout=30) as c:
            r = c.post(f"{server.url}/functions/v1/ts-hello", json={}, headers=headers)
            assert r.status_code == 503
            assert r.headers["x-relay-error"] == "true"
            assert r.json()["code"] == "BOOT_ERROR"
            assert "npm install deno" in r.json()["message"]
            r = c.post(f"{server.url}/functions/v1/pid", json={}, headers=headers)
            assert r.status_code == 200
            assert r.json()["pid"] > 0
    finally:
        server.stop()
        kill_leftover_workers(tmp_path)
