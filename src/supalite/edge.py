"""The outermost layer of every request: CORS as Supabase's gateway answers it, and the request
log's entry (logs.py), in one pass over the raw headers.

CORS: any origin, the API's methods, any requested header; a preflight is answered here, and
every other response carries `Access-Control-Allow-Origin: *` and the headers browsers may read
(Content-Range, Location, …) when the request has an Origin, plus `Vary: Origin` always.
Functions answer their own CORS, as on Supabase (the templates answer OPTIONS with their
`corsHeaders`): requests under `/functions/v1/` reach the function untouched, and the only help
given is the allow-origin and exposed headers on a response that sets no allow-origin itself.

Done as two Starlette middlewares (CORSMiddleware and a logging one), this layer cost about
14 µs a request, measured alone; here about 9, most of it the log line's write.  The saving is
the header objects built and parsed per request, and a send wrapper per layer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from supalite.logs import RequestLog, service_of, timestamp

FUNCTIONS_PREFIX = "/functions/v1/"
_ORIGIN = b"origin"
_REQUEST_METHOD = b"access-control-request-method"
_REQUEST_HEADERS = b"access-control-request-headers"
_REQUEST_PRIVATE_NETWORK = b"access-control-request-private-network"
_ALLOW_ORIGIN = b"access-control-allow-origin"
_VARY = b"vary"
_PREFLIGHT_VARY = (
    b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers, "
    b"Access-Control-Request-Private-Network"
)


class EdgeMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        log: RequestLog,
        *,
        allow_methods: Iterable[str],
        expose_headers: Iterable[str],
        max_age: int,
    ) -> None:
        self.app = app
        self.log = log
        methods = tuple(allow_methods)  # read twice below
        self.allow_methods = frozenset(m.encode() for m in methods)
        self._cors = [
            (_ALLOW_ORIGIN, b"*"),
            (b"access-control-expose-headers", ", ".join(expose_headers).encode()),
        ]
        self._preflight = [
            (_VARY, _PREFLIGHT_VARY),
            (_ALLOW_ORIGIN, b"*"),
            (b"access-control-allow-methods", ", ".join(methods).encode()),
            (b"access-control-max-age", str(max_age).encode()),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            await self._logged(self.app, scope, receive, send)
            return
        if kind != "http":
            await self.app(scope, receive, send)
            return
        origin, request_method = _find(scope, _ORIGIN, _REQUEST_METHOD)
        app = self.app
        if scope["path"].startswith(FUNCTIONS_PREFIX):
            add = self._function_headers if origin is not None else None
            await self._logged(app, scope, receive, send, add)
        elif origin is None:
            await self._logged(app, scope, receive, send, _vary_origin)
        elif request_method is not None and scope["method"] == "OPTIONS":
            await self._logged(self._preflight_answer(scope, request_method), scope, receive, send)
        else:
            await self._logged(app, scope, receive, send, self._simple_headers)

    async def _logged(
        self,
        app: ASGIApp,
        scope: Scope,
        receive: Receive,
        send: Send,
        add_headers: Callable[[list[tuple[bytes, bytes]]], None] | None = None,
    ) -> None:
        start = time.perf_counter()
        status = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                if add_headers is not None:
                    headers = list(message.get("headers", ()))
                    add_headers(headers)
                    message["headers"] = headers
            elif kind == "websocket.accept":
                status = 101
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        finally:
            path = scope["path"]
            state = scope.get("state", {})
            entry: dict[str, Any] = {
                "time": timestamp(),
                "service": service_of(path),
                "method": scope.get("method", "WS"),
                "path": path,
                "status": status or 500,
                "duration_ms": round((time.perf_counter() - start) * 1000, 3),
                "role": state.get("role"),
            }
            # A service's own fields for this request (functions: the name, execution_id).
            entry.update(state.get("log_fields", ()))
            self.log.write(entry)

    def _simple_headers(self, headers: list[tuple[bytes, bytes]]) -> None:
        headers.extend(self._cors)
        _vary_origin(headers)

    def _function_headers(self, headers: list[tuple[bytes, bytes]]) -> None:
        present = {name for name, _ in headers}
        headers.extend(h for h in self._cors if h[0] not in present)

    def _preflight_answer(self, scope: Scope, request_method: bytes) -> _Preflight:
        """The preflight's answer, given here: the app is not asked."""
        headers = list(self._preflight)
        requested, private_network = _find(scope, _REQUEST_HEADERS, _REQUEST_PRIVATE_NETWORK)
        failures = []
        if request_method not in self.allow_methods:
            failures.append("method")
        if requested is not None:  # any header may be sent: the requested ones are allowed
            headers.append((b"access-control-allow-headers", requested))
        if private_network is not None:
            failures.append("private-network")
        return _Preflight(headers, failures)


class _Preflight:
    """A preflight's response: 200 "OK", or 400 naming what the request asked that is not
    allowed (Starlette's wording, which supalite has always answered)."""

    def __init__(self, headers: list[tuple[bytes, bytes]], failures: list[str]) -> None:
        self.headers = headers
        self.failures = failures

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        failures = self.failures
        body = f"Disallowed CORS {', '.join(failures)}".encode() if failures else b"OK"
        headers = [
            *self.headers,
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"text/plain; charset=utf-8"),
        ]
        status = 400 if failures else 200
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _find(scope: Scope, first: bytes, second: bytes) -> tuple[bytes | None, bytes | None]:
    """Two request headers' values (the last of each), in one pass over the raw list."""
    a = b = None
    for name, value in scope["headers"]:
        if name == first:
            a = value
        elif name == second:
            b = value
    return a, b


def _vary_origin(headers: list[tuple[bytes, bytes]]) -> None:
    """`Vary: Origin` joined to whatever Vary the response has, as one header.  (ASGI response
    header names are lower-case.)"""
    vary = [value for name, value in headers if name == _VARY]
    if vary:
        headers[:] = [(name, value) for name, value in headers if name != _VARY]
    headers.append((_VARY, b", ".join([*vary, b"Origin"])))
