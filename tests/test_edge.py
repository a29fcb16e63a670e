"""The app's outermost layer (edge.py): CORS as Supabase's gateway answers it, functions left
to answer their own, and one request-log entry per request whatever happened below."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from supalite.edge import EdgeMiddleware
from supalite.logs import RequestLog, read_log

EXPOSED = ["Content-Range", "Location"]
calls: list[str] = []


async def rows(request: Request) -> Response:
    calls.append(request.method)
    return PlainTextResponse("rows", headers={"vary": "Accept"})


async def plain(request: Request) -> Response:
    calls.append(request.method)
    return PlainTextResponse("plain")


async def function(request: Request) -> Response:
    calls.append(request.method)
    if request.query_params.get("cors") == "own":
        return PlainTextResponse("fn", headers={"access-control-allow-origin": "https://a.example"})
    return PlainTextResponse("fn")


async def broken(request: Request) -> Response:
    raise RuntimeError("boom")


async def socket(ws: WebSocket) -> None:
    await ws.accept()
    await ws.send_text("hi")
    await ws.close()


@pytest.fixture
def edge(tmp_path: Path) -> tuple[TestClient, Path]:
    calls.clear()
    log_file = tmp_path / "requests.jsonl"
    app = Starlette(
        routes=[
            Route("/rest/v1/rows", rows, methods=["GET", "POST", "OPTIONS"]),
            Route("/auth/v1/plain", plain),
            Route("/functions/v1/fn", function, methods=["GET", "OPTIONS"]),
            Route("/storage/v1/broken", broken),
            WebSocketRoute("/realtime/v1/websocket", socket),
        ]
    )
    wrapped = EdgeMiddleware(
        app,
        RequestLog(log_file),
        allow_methods=["GET", "POST", "OPTIONS"],
        expose_headers=EXPOSED,
        max_age=86400,
    )
    return TestClient(wrapped, raise_server_exceptions=False), log_file


def test_without_origin_only_vary_is_added(edge: tuple[TestClient, Path]) -> None:
    client, _ = edge
    r = client.get("/auth/v1/plain")
    assert r.text == "plain"
    assert r.headers["vary"] == "Origin"
    assert "access-control-allow-origin" not in r.headers


def test_simple_request_gets_cors_headers_and_joined_vary(edge: tuple[TestClient, Path]) -> None:
    client, _ = edge
    r = client.get("/rest/v1/rows", headers={"origin": "https://app.example"})
    assert r.text == "rows"
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["access-control-expose-headers"] == "Content-Range, Location"
    assert r.headers.get_list("vary") == ["Accept, Origin"]


def test_preflight_is_answered_without_the_app(edge: tuple[TestClient, Path]) -> None:
    client, log_file = edge
    r = client.options(
        "/rest/v1/rows",
        headers={
            "origin": "https://app.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, x-client-info, apikey",
        },
    )
    assert (r.status_code, r.text) == (200, "OK")
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["access-control-allow-methods"] == "GET, POST, OPTIONS"
    assert r.headers["access-control-allow-headers"] == "authorization, x-client-info, apikey"
    assert r.headers["access-control-max-age"] == "86400"
    assert r.headers["vary"].startswith("Origin, Access-Control-Request-Method")
    assert calls == []
    [entry] = read_log(log_file)
    assert (entry["method"], entry["status"], entry["service"]) == ("OPTIONS", 200, "rest")


def test_preflight_for_a_method_not_allowed(edge: tuple[TestClient, Path]) -> None:
    client, _ = edge
    r = client.options(
        "/rest/v1/rows",
        headers={"origin": "https://app.example", "access-control-request-method": "TRACE"},
    )
    assert (r.status_code, r.text) == (400, "Disallowed CORS method")
    assert calls == []


def test_options_without_preflight_headers_reaches_the_app(edge: tuple[TestClient, Path]) -> None:
    client, _ = edge
    r = client.options("/rest/v1/rows", headers={"origin": "https://app.example"})
    assert r.text == "rows"
    assert r.headers["access-control-allow-origin"] == "*"
    assert calls == ["OPTIONS"]


def test_functions_answer_their_own_cors(edge: tuple[TestClient, Path]) -> None:
    client, _ = edge
    preflight = {"origin": "https://app.example", "access-control-request-method": "POST"}
    r = client.options("/functions/v1/fn", headers=preflight)
    assert r.text == "fn" and calls == ["OPTIONS"]  # the function's own answer
    r = client.get("/functions/v1/fn?cors=own", headers={"origin": "https://app.example"})
    assert r.headers["access-control-allow-origin"] == "https://a.example"
    assert r.headers["access-control-expose-headers"] == "Content-Range, Location"
    r = client.get("/functions/v1/fn", headers={"origin": "https://app.example"})
    assert r.headers["access-control-allow-origin"] == "*"
    r = client.get("/functions/v1/fn")
    assert "access-control-allow-origin" not in r.headers and "vary" not in r.headers


def test_every_request_is_logged_even_a_failing_one(edge: tuple[TestClient, Path]) -> None:
    client, log_file = edge
    client.get("/auth/v1/plain")
    assert client.get("/storage/v1/broken").status_code == 500
    with client.websocket_connect("/realtime/v1/websocket") as ws:
        assert ws.receive_text() == "hi"
    entries = list(read_log(log_file))
    assert [(e["service"], e["method"], e["status"]) for e in entries] == [
        ("auth", "GET", 200),
        ("storage", "GET", 500),
        ("realtime", "WS", 101),
    ]
    assert all(e["duration_ms"] >= 0 and e["time"].endswith("Z") for e in entries)
