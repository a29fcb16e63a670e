"""HTTP for the Data API (`/rest/v1`): parse, call, respond."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from supalite.gateway import Claims, GatewayError
from supalite.rest.openapi import openapi_document


def _claims(request: Request) -> Claims:
    claims: Claims = request.app.state.gateway.authenticate(
        request.headers, request.query_params, require_apikey=True
    )
    request.state.role = claims.role
    return claims


def gateway_error_response(e: GatewayError) -> Response:
    return JSONResponse(e.postgrest_body(), status_code=e.status, headers=e.headers)


async def root(request: Request) -> Response:
    try:
        _claims(request)
    except GatewayError as e:
        return gateway_error_response(e)
    doc = openapi_document(request.app.state.runtime.settings)
    return JSONResponse(doc, media_type="application/openapi+json")


routes = [Route("/", root, methods=["GET", "HEAD"])]
