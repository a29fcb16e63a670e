"""HTTP for the Data API (`/rest/v1`): parse, call, respond."""

from __future__ import annotations

import json
import logging

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Scope

from supalite.gateway import Claims, GatewayError
from supalite.rest.errors import ApiError
from supalite.rest.openapi import openapi_document
from supalite.rest.service import RestContext, RestRequest, RestService

log = logging.getLogger("supalite.rest")
_METHODS = ["GET", "HEAD", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"]


def _claims(request: Request) -> Claims:
    # `?apikey=` is only looked at without the header: parsing the query string into
    # Starlette's QueryParams costs more than the rest of authentication.
    headers = request.headers
    query = None if headers.get("apikey") else request.query_params
    claims: Claims = request.app.state.gateway.authenticate(headers, query, require_apikey=True)
    request.state.role = claims.role
    return claims


def error_response(e: ApiError) -> Response:
    headers = {"Proxy-Status": f"PostgREST; error={e.code}", **e.headers}
    return JSONResponse(e.body(), status_code=e.status, headers=headers)


def gateway_error_response(e: GatewayError) -> Response:
    return JSONResponse(e.postgrest_body(), status_code=e.status, headers=e.headers)


def _service(request: Request) -> RestService:
    state = request.app.state
    ctx = RestContext(state.pools.api, state.schema.current, state.runtime.settings.api)
    return RestService(ctx)


async def root(request: Request) -> Response:
    try:
        claims = _claims(request)
    except GatewayError as e:
        return gateway_error_response(e)
    doc = await openapi_document(request.app.state, claims)
    return Response(json.dumps(doc), media_type="application/openapi+json; charset=utf-8")


async def resource(request: Request) -> Response:
    try:
        claims = _claims(request)
    except GatewayError as e:
        return gateway_error_response(e)
    max_body = request.app.state.runtime.settings.api.max_body_bytes
    body = b""
    if request.method not in ("GET", "HEAD", "OPTIONS", "DELETE"):
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body:
                return error_response(
                    ApiError(
                        413,
                        "PGRST413",
                        "Payload Too Large",
                        f"The request body exceeds {max_body} bytes",
                    )
                )
            chunks.append(chunk)
        body = b"".join(chunks)
    name = request.path_params["name"]
    rpc = request.path_params.get("rpc", False)
    req = RestRequest(
        method=request.method,
        resource=name,
        rpc=rpc,
        query_string=request.scope.get("query_string", b""),
        headers=request.headers,
        body=body,
        claims=claims,
        path=_path(request.scope),
    )
    try:
        resp = await _service(request).handle(req)
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
    return Response(
        resp.body, status_code=resp.status, headers=resp.headers, media_type=resp.media_type
    )


def _path(scope: Scope) -> str:
    """`request.url.path` without building the URL (it parses the whole URL back apart)."""
    path: str = scope["path"]
    return path.replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")


async def rpc(request: Request) -> Response:
    request.path_params["rpc"] = True
    return await resource(request)


routes = [
    Route("/", root, methods=["GET", "HEAD"]),
    Route("/rpc/{name}", rpc, methods=_METHODS),
    Route("/{name}", resource, methods=_METHODS),
]
