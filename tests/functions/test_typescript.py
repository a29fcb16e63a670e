"""TypeScript functions (`index.ts`, as Supabase Edge Functions) run by Deno from the npm
`deno` package (tests/compat/js, installed by `make test-deps`), behind the same contract."""

from __future__ import annotations

import time
from pathlib import Path

import asyncpg
import httpx
import psutil

from supalite.functions.runtime import find_deno
from tests.functions.conftest import USERS, Served, assert_sse_streams

DENO_MISSING = "Deno is not installed: run `make test-deps` (npm install in tests/compat/js)"


def call(served: Served, method: str, path: str, **kw: object) -> httpx.Response:
    with httpx.Client(timeout=60) as c:
        return c.request(method, served.fn_url + path, **kw)  # type: ignore[arg-type]


def test_deno_is_installed_by_the_test_dependencies(served: Served) -> None:
    assert find_deno(None, served.project) is not None, DENO_MISSING


def test_deno_serve_round_trip(served: Served) -> None:
    r = call(served, "POST", "/ts-hello/sub?a=1", json={"x": 1},
             headers={**served.anon_headers(), "x-custom": "yes"})  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["method"] == "POST"
    assert body["path"] == "/ts-hello/sub"
    assert body["url"].startswith("http://")  # the public URL, not the worker's socket
    assert body["query"] == {"a": "1"}
    assert body["custom"] == "yes"
    assert body["json"] == {"x": 1}
    assert body["secret"] == "s3cr3t-value"
    assert body["supabaseUrl"] == served.url
    assert body["leak"] is None


def test_export_default_fetch(served: Served) -> None:
    r = call(served, "PUT", "/ts-default", content=b"")
    assert r.status_code == 200
    assert r.text == "default export: PUT"


def test_verify_jwt_applies_to_typescript(served: Served) -> None:
    r = call(served, "POST", "/ts-hello", json={})
    assert r.status_code == 401
    assert r.json() == {"msg": "Error: Missing authorization header"}


async def test_supabase_js_inside_a_function_sees_rls(served: Served) -> None:
    conn = await asyncpg.connect(served.server.info["DB URL"])
    try:
        await conn.execute("insert into notes (owner, body) values ($1, 'ts-note')",
                           USERS["bob"])  # fmt: skip
    finally:
        await conn.close()
    r = call(served, "GET", "/ts-notes", headers={"Authorization": f"Bearer {served.token('bob')}"})
    assert r.status_code == 200, r.text
    assert "ts-note" in [row["body"] for row in r.json()["rows"]]
    assert all(row["body"] != "alice-1" for row in r.json()["rows"])
    r = call(served, "GET", "/ts-notes", headers=served.anon_headers())
    assert r.json()["rows"] == []


def test_typescript_sse_streams(served: Served, tmp_path: Path) -> None:
    assert_sse_streams(served, "ts-sse", tmp_path / "ts-gate")


def test_typescript_error_is_500_without_trace(served: Served) -> None:
    r = call(served, "GET", "/ts-boom", headers=served.anon_headers())
    assert r.status_code == 500
    assert r.json()["code"] == "WORKER_ERROR"
    assert "ts-boom-detail" not in r.text


def test_typescript_syntax_error_is_a_boot_error(served: Served) -> None:
    r = call(served, "GET", "/ts-broken", headers=served.anon_headers())
    assert r.status_code == 503
    assert r.json()["code"] == "BOOT_ERROR"
    assert r.headers["x-relay-error"] == "true"


def test_typescript_endless_loop_gives_504_and_is_killed(served: Served, tmp_path: Path) -> None:
    pidfile = tmp_path / "ts-spin.pid"
    r = call(served, "GET", "/ts-spin", params={"pidfile": str(pidfile)})
    assert r.status_code == 504
    spun = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while psutil.pid_exists(spun) and time.monotonic() < deadline:
        if psutil.Process(spun).status() == psutil.STATUS_ZOMBIE:
            break
        time.sleep(0.05)
    assert not psutil.pid_exists(spun) or psutil.Process(spun).status() == "zombie"
    r = call(served, "GET", "/ts-default")
    assert r.status_code == 200
