"""`/functions/v1/<name>` against a live server: the invocation contract, isolation and limits.

The server runs with a 3 s wall time, a 200 MiB memory budget per worker, a 1 MiB request
limit and a 2 MiB response limit.  TypeScript functions: test_typescript.py."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest

from tests.functions.conftest import USERS, Served, assert_sse_streams, worker_pids


def call(served: Served, method: str, path: str, **kw: object) -> httpx.Response:
    with httpx.Client(timeout=30) as c:
        return c.request(method, served.fn_url + path, **kw)  # type: ignore[arg-type]


def test_json_round_trip_with_path_query_and_headers(served: Served) -> None:
    r = call(served, "POST", "/hello/sub/path?a=1&b=two", json={"x": [1, 2]},
             headers={**served.anon_headers(), "x-custom": "yes"})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["method"] == "POST"
    assert body["path"] == "/hello/sub/path"  # as a Supabase function sees it
    assert body["query"] == {"a": "1", "b": "two"}
    assert body["custom"] == "yes"
    assert body["json"] == {"x": [1, 2]}


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "PATCH", "DELETE"])
def test_every_method_reaches_the_function(served: Served, method: str) -> None:
    for _ in range(3):  # the same kept-alive connection to the worker serves the next call
        bodyless = method in ("GET", "HEAD", "DELETE")
        r = call(served, method, "/echo", content=b"" if bodyless else b"x")
        assert r.status_code == 200, r.text
        assert r.headers["x-echo-method"] == method
        assert r.content == (b"" if bodyless else b"x")


def test_binary_and_text_bodies_pass_through(served: Served) -> None:
    payload = bytes(range(256)) * 100
    r = call(served, "POST", "/echo", content=payload,
             headers={"content-type": "application/octet-stream"})  # fmt: skip
    assert r.status_code == 200
    assert r.content == payload
    assert r.headers["x-echo-length"] == str(len(payload))
    r = call(served, "POST", "/echo", content="héllo".encode(),
             headers={"content-type": "text/plain; charset=utf-8"})  # fmt: skip
    assert r.text == "héllo"
    assert r.headers["content-type"].startswith("text/plain")


def test_function_status_codes_pass_through(served: Served) -> None:
    r = call(served, "POST", "/echo?status=418", content=b"teapot")
    assert r.status_code == 418
    assert r.content == b"teapot"
    assert "x-relay-error" not in r.headers


def test_multipart_form(served: Served) -> None:
    r = call(served, "POST", "/form", headers=served.anon_headers(),
             data={"title": "report"},
             files={"file": ("a.bin", b"\x00" * 5000, "application/x-thing")})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json() == {
        "title": "report",
        "file": {"filename": "a.bin", "size": 5000, "type": "application/x-thing"},
    }


def test_streamed_request_body(served: Served) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for i in range(10):
            yield bytes([i]) * 1000

    r = call(served, "POST", "/echo", content=chunks())
    assert r.status_code == 200
    assert r.headers["x-echo-length"] == "10000"


# -------------------------------------------------------------------------- verify_jwt


def test_verify_jwt_without_authorization(served: Served) -> None:
    r = call(served, "POST", "/hello", json={})
    assert r.status_code == 401
    assert r.json() == {"msg": "Error: Missing authorization header"}


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": "Bearer a.b.c"},
        {"apikey": "sb_publishable_unknown"},  # Kong passes an unknown apikey on as the bearer
        {"apikey": "not-a-key", "Authorization": "Bearer sb_secret_x"},
    ],
)
def test_verify_jwt_with_an_invalid_token(served: Served, headers: dict[str, str]) -> None:
    r = call(served, "POST", "/hello", json={}, headers=headers)
    assert r.status_code == 401
    assert r.json() == {"msg": "Invalid JWT"}


def test_verify_jwt_with_a_token_signed_by_another_secret(served: Served) -> None:
    from tests.functions.conftest import user_token

    forged = user_token("another-secret-with-at-least-32-characters-000", "alice")
    r = call(served, "POST", "/hello", json={}, headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401
    assert r.json() == {"msg": "Invalid JWT"}


def test_verify_jwt_accepts_user_and_key_tokens(served: Served) -> None:
    alice = served.token("alice")
    r = call(served, "POST", "/hello", json={}, headers={"Authorization": f"Bearer {alice}"})
    assert r.status_code == 200
    assert r.json()["authorization"] == f"Bearer {alice}"
    # A new-format key stands for its JWT, as Kong maps it: the function sees the JWT.
    publishable = served.server.info["Publishable key"]
    r = call(served, "POST", "/hello", json={}, headers={"apikey": publishable})
    assert r.status_code == 200
    assert r.json()["authorization"] == f"Bearer {served.server.anon_key}"


def test_verify_jwt_false_needs_no_token(served: Served) -> None:
    r = call(served, "POST", "/echo", content=b"open")
    assert r.status_code == 200
    assert r.content == b"open"


def test_disabled_and_unknown_functions_are_not_found(served: Served) -> None:
    for name in ("nope", "hidden", "_shared", "a%20b", "hello.py"):
        r = call(served, "GET", f"/{name}", headers=served.anon_headers())
        assert r.status_code == 404, name
        assert r.text == "Function not found"


# -------------------------------------------------------------------------- user context


async def test_function_calls_the_data_api_as_the_caller(served: Served) -> None:
    conn = await asyncpg.connect(served.server.info["DB URL"])
    try:
        await conn.execute(
            "insert into notes (owner, body) values ($1, 'alice-1'), ($1, 'alice-2'), ($2, 'bob')",
            USERS["alice"], USERS["bob"],
        )  # fmt: skip
    finally:
        await conn.close()
    seen = {}
    for user in ("alice", "bob"):
        r = call(served, "GET", "/notes",
                 headers={"Authorization": f"Bearer {served.token(user)}"})  # fmt: skip
        assert r.status_code == 200, r.text
        assert r.json()["status"] == 200
        seen[user] = [row["body"] for row in r.json()["rows"]]
    assert seen == {"alice": ["alice-1", "alice-2"], "bob": ["bob"]}
    r = call(served, "GET", "/notes", headers=served.anon_headers())
    assert r.json()["rows"] == []  # anon: RLS shows nothing


# -------------------------------------------------------------------------- environment


def test_environment_and_dotenv_secrets(served: Served) -> None:
    r = call(served, "GET", "/env", headers=served.anon_headers())
    assert r.status_code == 200, r.text
    env = r.json()
    assert env["SUPABASE_URL"] == served.url  # not the .env's SUPABASE_URL: injected wins
    assert env["SUPABASE_ANON_KEY"] == served.server.anon_key
    assert env["SUPABASE_SERVICE_ROLE_KEY"] == served.server.service_key
    assert env["SUPABASE_DB_URL"] == served.server.info["DB URL"]
    assert env["MY_SECRET"] == "s3cr3t-value"
    assert env["QUOTED_SECRET"] == "two words"
    # The server's own environment stays out of functions.
    assert env["SUPALITE_TEST_LEAK"] is None
    assert env["JWT_SECRET"] is None and env["DATABASE_URL"] is None


# -------------------------------------------------------------------------- streaming


def test_server_sent_events_stream(served: Served, tmp_path: Path) -> None:
    assert_sse_streams(served, "sse", tmp_path / "gate")


# -------------------------------------------------------------------------- failures


def test_raising_function_gives_500_without_trace(served: Served) -> None:
    r = call(served, "GET", "/boom", headers=served.anon_headers())
    assert r.status_code == 500
    assert r.json() == {
        "code": "WORKER_ERROR",
        "message": "Function exited due to an error (please check logs)",
    }
    assert "boom-detail-4711" not in r.text and "Traceback" not in r.text
    assert "x-relay-error" not in r.headers  # the function's error, not the relay's
    # test_lifecycle.py checks that the trace reached the server's log.


def test_function_that_fails_to_import_is_a_boot_error(served: Served) -> None:
    r = call(served, "GET", "/broken", headers=served.anon_headers())
    assert r.status_code == 503
    assert r.json()["code"] == "BOOT_ERROR"
    assert r.headers["x-relay-error"] == "true"
    assert "SyntaxError" not in r.text


def test_crash_is_isolated_and_the_next_call_gets_a_fresh_worker(served: Served) -> None:
    first = call(served, "GET", "/crash", headers=served.anon_headers()).json()["pid"]
    r = call(served, "GET", "/crash?crash=1", headers=served.anon_headers())
    assert r.status_code == 500
    assert r.json()["code"] == "WORKER_ERROR"
    assert r.headers["x-relay-error"] == "true"
    assert not psutil.pid_exists(first) or psutil.Process(first).status() == "zombie"
    r = call(served, "GET", "/crash", headers=served.anon_headers())
    assert r.status_code == 200
    assert r.json()["pid"] != first
    assert call(served, "GET", "/health").status_code == 404  # the prefix is /functions/v1
    with httpx.Client() as c:
        assert c.get(served.url + "/health").status_code == 200


def test_memory_blow_up_gives_546_and_a_fresh_worker(served: Served) -> None:
    first = call(served, "GET", "/hog", headers=served.anon_headers()).json()["pid"]
    r = call(served, "GET", "/hog?hog=1", headers=served.anon_headers())
    assert r.status_code == 546
    assert r.json() == {
        "code": "WORKER_LIMIT",
        "message": "Worker failed to respond due to a resource limit (please check logs)",
    }
    assert r.headers["x-relay-error"] == "true"
    r = call(served, "GET", "/hog", headers=served.anon_headers())
    assert r.status_code == 200
    assert r.json()["pid"] != first


def test_wall_time_gives_504_and_the_stuck_worker_is_killed(served: Served, tmp_path: Path) -> None:
    pidfile = tmp_path / "spin.pid"
    r = call(served, "GET", "/spin", params={"pidfile": str(pidfile)})
    assert r.status_code == 504
    assert r.json() == {"message": "The upstream server is timed out"}
    spun = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while psutil.pid_exists(spun) and time.monotonic() < deadline:
        if psutil.Process(spun).status() == psutil.STATUS_ZOMBIE:
            break
        time.sleep(0.05)
    assert not psutil.pid_exists(spun) or psutil.Process(spun).status() == "zombie"
    # Other functions kept working all along.
    assert call(served, "GET", "/pid", headers=served.anon_headers()).status_code == 200


def test_request_size_limit(served: Served) -> None:
    r = call(served, "POST", "/echo", content=b"x" * (1024 * 1024 + 1))
    assert r.status_code == 413
    assert r.headers["x-relay-error"] == "true"

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(20):
            yield b"y" * 100_000

    r = call(served, "POST", "/echo", content=chunks())  # chunked: no Content-Length
    assert r.status_code == 413
    assert call(served, "POST", "/echo", content=b"small").status_code == 200


# -------------------------------------------------------------------------- CORS


def test_preflight_is_answered_by_the_function(served: Served) -> None:
    r = call(served, "OPTIONS", "/cors", headers={
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, apikey, content-type",
    })  # fmt: skip
    assert r.status_code == 200
    assert r.text == "ok"
    assert r.headers["access-control-allow-headers"] == (
        "authorization, x-client-info, apikey, content-type"
    )
    assert r.headers["access-control-allow-methods"] == "POST, GET, OPTIONS"


def test_preflight_skips_verify_jwt(served: Served) -> None:
    # `hello` has verify_jwt on: OPTIONS still reaches it (its answer is its own).
    r = call(
        served,
        "OPTIONS",
        "/hello",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
    )
    assert r.status_code == 200
    assert r.json()["method"] == "OPTIONS"


def test_function_cors_headers_are_not_overridden(served: Served) -> None:
    r = call(served, "POST", "/cors", headers={"Origin": "https://app.example"})
    assert r.json() == {"ok": True}
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["access-control-allow-methods"] == "POST, GET, OPTIONS"


# -------------------------------------------------------------------------- pool


async def test_concurrent_calls_share_a_small_pool(served: Served) -> None:
    async with httpx.AsyncClient(timeout=30) as c:
        rs = await asyncio.gather(*(
            c.get(served.fn_url + "/pid", headers=served.anon_headers()) for _ in range(40)
        ))  # fmt: skip
    assert all(r.status_code == 200 for r in rs)
    pids = {r.json()["pid"] for r in rs}
    assert 1 <= len(pids) <= 2  # SUPALITE_FUNCTIONS_WORKERS defaults to 2
    assert served.server.proc is not None
    assert pids <= worker_pids(served.server.proc.pid)


def test_changed_file_is_served_by_a_fresh_worker(served: Served) -> None:
    folder = served.project / "supabase" / "functions" / "reload"
    folder.mkdir(exist_ok=True)
    (folder / "main.py").write_text("async def handler(request):\n    return 'v1'\n")
    r = call(served, "GET", "/reload", headers=served.anon_headers())
    assert r.text == "v1"
    main = folder / "main.py"
    main.write_text("async def handler(request):\n    return 'v2'\n")
    st = main.stat()
    import os

    os.utime(main, (st.st_atime, st.st_mtime + 5))  # a distinct mtime, however fast the disk
    r = call(served, "GET", "/reload", headers=served.anon_headers())
    assert r.text == "v2"
    assert json.loads(call(served, "GET", "/pid", headers=served.anon_headers()).text)["pid"]


def test_response_size_limit(served: Served) -> None:
    assert call(served, "GET", "/big?n=1000").content == b"z" * 1000
    assert call(served, "GET", "/big?n=500000").content == b"z" * 500_000  # streamed through
    r = call(served, "GET", "/big?n=3000000")  # declared up front
    assert r.status_code == 546
    assert r.json()["code"] == "WORKER_LIMIT"
    assert r.headers["x-relay-error"] == "true"
    # Streamed past the limit: the response is cut, never passed off as complete.
    with pytest.raises(httpx.HTTPError):
        call(served, "GET", "/big?n=3000000&stream=1")
    assert call(served, "GET", "/big?n=1000").status_code == 200


def test_custom_entrypoint(served: Served) -> None:
    r = call(served, "GET", "/custom")
    assert r.status_code == 200
    assert r.text == "served from a custom entrypoint"
    assert call(served, "GET", "/_lib").status_code == 404  # not a function name
