"""HTTP for the Data API (`/rest/v1`): authenticate, read the body, call the service, respond."""

from __future__ import annotations

import json
import logging

import asyncpg
from starlette.datastructures import Headers, QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from supalite.gateway import Claims, GatewayError
from supalite.rest.errors import ApiError
from supalite.rest.openapi import check_accept, openapi_document
from supalite.rest.service import (
    RestContext,
    RestRequest,
    RestResponse,
    RestService,
    request_schema,
)
from supalite.rest.shapes import ShapeCache

log = logging.getLogger("supalite.rest")


def _authenticate(scope: Scope, headers: Headers) -> Claims:
    # `?apikey=` is only looked at without the header: parsing the query string costs more
    # than the rest of authentication.
    query = None if headers.get("apikey") else QueryParams(scope["query_string"])
    claims: Claims = scope["app"].state.gateway.authenticate(headers, query, require_apikey=True)
    scope.setdefault("state", {})["role"] = claims.role  # for the request log
    return claims


def error_response(e: ApiError) -> Response:
    headers = {"Proxy-Status": f"PostgREST; error={e.code}", **e.headers}
    return JSONResponse(e.body(), status_code=e.status, headers=headers)


def gateway_error_response(e: GatewayError) -> Response:
    return JSONResponse(e.postgrest_body(), status_code=e.status, headers=e.headers)


async def root(request: Request) -> Response:
    try:
        claims = _authenticate(request.scope, request.headers)
    except GatewayError as e:
        return gateway_error_response(e)
    try:
        check_accept(request.headers.get("accept"))
        settings = request.app.state.runtime.settings.api
        schema, profiled = request_schema(request.method, request.headers, settings)
    except ApiError as e:
        return error_response(e)
    doc = await openapi_document(request.app.state, claims, schema)
    headers = {"Content-Profile": schema} if profiled else None
    return Response(
        json.dumps(doc), media_type="application/openapi+json; charset=utf-8", headers=headers
    )


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body, or None once it passes `limit` (the rest is not read)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            raise ClientDisconnect
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _serve(
    scope: Scope, receive: Receive, name: str, rpc: bool, shapes: ShapeCache
) -> RestResponse | Response:
    state = scope["app"].state
    headers = Headers(scope=scope)
    try:
        claims = _authenticate(scope, headers)
    except GatewayError as e:
        return gateway_error_response(e)
    method: str = scope["method"]
    body = b""
    if method not in ("GET", "HEAD", "OPTIONS", "DELETE"):
        max_body = state.runtime.settings.api.max_body_bytes
        read = await _read_body(receive, max_body)
        if read is None:
            detail = f"The request body exceeds {max_body} bytes"
            return error_response(ApiError(413, "PGRST413", "Payload Too Large", detail))
        body = read
    req = RestRequest(
        method=method,
        resource=name,
        rpc=rpc,
        query_string=scope["query_string"],
        headers=headers,
        body=body,
        claims=claims,
        path=_path(scope),
    )
    ctx = RestContext(state.pools.api, state.schema.current, state.runtime.settings.api, shapes)
    service = RestService(ctx)
    try:
        return await service.handle(req)
    except ApiError as e:
        return error_response(e)
    except (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError) as e:
        log.warning("database unavailable: %s", e)
        return error_response(
            ApiError(
                503, "PGRST001", "Database client error. Retrying the connection.", str(e)[:200]
            )
        )
    except TimeoutError:
        return error_response(
            ApiError(504, "PGRST003", "Timed out acquiring connection from connection pool.")
        )


async def _send(resp: RestResponse, send: Send) -> None:
    """What Starlette's Response would send, without building one."""
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in resp.headers.items()]
    media = resp.media_type
    if media is not None:
        if media.startswith("text/") and "charset=" not in media:
            media += "; charset=utf-8"
        raw.append((b"content-type", media.encode("latin-1")))
    status = resp.status
    if status >= 200 and status not in (204, 304):
        raw.append((b"content-length", str(len(resp.body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": resp.body})


def _path(scope: Scope) -> str:
    """`request.url.path` without building the URL (it parses the whole URL back apart)."""
    path: str = scope["path"]
    return path.replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")


def _route_path(scope: Scope) -> str:
    """The path below the mount (`/rest/v1`): what Starlette's routing would match on."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


class DataApi:
    """`/rest/v1/<name>` and `/rest/v1/rpc/<name>`, any method (the service answers those it
    does not support as PostgREST does), and the OpenAPI root.  A plain ASGI app rather than
    Starlette routes: the Data API is the hot path, and Starlette's per-request Route matching,
    Request and Response objects cost more than the rest of the HTTP handling."""

    def __init__(self) -> None:
        self._root = Route("/", root, methods=["GET", "HEAD"])
        self.shapes = ShapeCache()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = _route_path(scope)
        if path in ("", "/"):
            await self._root.handle(scope, receive, send)
            return
        name, rpc = path[1:], False
        if name.startswith("rpc/"):
            name, rpc = name[4:], True
        if not name or "/" in name:
            raise HTTPException(404)
        resp = await _serve(scope, receive, name, rpc, self.shapes)
        if isinstance(resp, RestResponse):
            await _send(resp, send)
        else:
            await resp(scope, receive, send)
