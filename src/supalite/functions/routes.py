"""HTTP for `/functions/v1/<name>[/<sub-path>]`: any method, forwarded to the function's worker.

What happens in front of the function is what Supabase's local stack does (Kong, then the CLI's
router `serve/templates/main.ts`): Authorization is rewritten as Kong rewrites it (a new-format
key stands for its JWT), unknown names get 404 "Function not found", and with `verify_jwt`
every request but OPTIONS needs a valid JWT (401 `{"msg": "Invalid JWT"}`); the gateway
decides validity.  Preflights reach the function, which answers its own CORS, as on Supabase.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from supalite.functions import errors
from supalite.functions.errors import FunctionsError
from supalite.functions.output import EXECUTION_HEADER
from supalite.functions.registry import FunctionSpec
from supalite.functions.runtime import FunctionsRuntime
from supalite.gateway import Gateway, GatewayError

PREFIX = "/functions/v1"
_DROP_REQUEST = frozenset({
    "connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
    "proxy-authorization", "proxy-connection", "authorization", "expect",
    "content-length",  # the hop to the worker sets its own framing
    EXECUTION_HEADER,  # supalite's own, never the caller's
})  # fmt: skip


def render(error: FunctionsError) -> Response:
    headers = {"x-relay-error": "true"} if error.relay else None
    if isinstance(error.body, str):
        return PlainTextResponse(error.body, error.status, headers=headers)
    return JSONResponse(error.body, error.status, headers=headers)


def _authorization(request: Request, gateway: Gateway) -> str | None:
    """Kong's rewrite: the caller's bearer unless it is an `sb_` key, else the JWT the apikey
    stands for (or the apikey itself)."""
    token = gateway.bearer(request.headers) or gateway.apikey_token(request.headers)
    return f"Bearer {token}" if token else None


def _check_jwt(request: Request, gateway: Gateway, authorization: str | None) -> None:
    if authorization is None:
        raise errors.invalid_jwt("Error: Missing authorization header")
    try:
        gateway.verify(authorization.removeprefix("Bearer "))
    except GatewayError:
        raise errors.invalid_jwt() from None


def _forward_headers(
    request: Request, authorization: str | None, execution_id: str
) -> list[tuple[str, str]]:
    out = [
        (k.decode("latin-1"), v.decode("latin-1"))
        for k, v in request.scope["headers"]
        if k.decode("latin-1").lower() not in _DROP_REQUEST
    ]
    if authorization is not None:
        out.append(("authorization", authorization))
    client = request.client
    if client is not None:
        out.append(("x-forwarded-for", client.host))
    out.append(("x-forwarded-proto", request.url.scheme))
    out.append((EXECUTION_HEADER, execution_id))
    return out


def _function_path(request: Request) -> str:
    """`/<name>/<sub-path>?<query>` as sent (still percent-encoded): what a Supabase function
    sees in its request URL once the gateway strips `/functions/v1`."""
    raw: bytes = request.scope.get("raw_path") or request.scope["path"].encode()
    prefix = (request.scope.get("root_path") or PREFIX).encode()  # the Mount sets it
    path = raw[len(prefix) :] if raw.startswith(prefix) else raw
    query: bytes = request.scope.get("query_string", b"")
    return (path + (b"?" + query if query else b"")).decode("latin-1")


def _has_body(request: Request) -> bool:
    h = request.headers
    return "transfer-encoding" in h or h.get("content-length", "0") not in ("", "0")


async def invoke(request: Request) -> Response:
    runtime: FunctionsRuntime | None = getattr(request.app.state, "functions", None)
    if runtime is None:
        return render(errors.not_found())
    gateway: Gateway = request.app.state.gateway
    name = request.path_params["name"]
    execution_id = str(uuid.uuid4())
    try:
        spec: FunctionSpec = await runtime.resolve(name)
        # The request log's entry for this call names the function; its output (output.py)
        # carries the same execution id.
        request.state.log_fields = {"function": name, "execution_id": execution_id}
        authorization = _authorization(request, gateway)
        if spec.verify_jwt and request.method != "OPTIONS":
            _check_jwt(request, gateway, authorization)
        length = request.headers.get("content-length")
        body: AsyncIterator[bytes] | None = request.stream() if _has_body(request) else None
        upstream = await runtime.invoke(
            spec,
            request.method,
            _function_path(request),
            _forward_headers(request, authorization, execution_id),
            body,
            int(length) if length and length.isdigit() else None,
        )
    except FunctionsError as e:
        return render(e)
    response: Response
    if isinstance(upstream.body, bytes):
        response = Response(upstream.body, status_code=upstream.status)
    else:
        response = StreamingResponse(upstream.body, status_code=upstream.status)
    response.raw_headers = [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in upstream.headers
    ]
    return response


# Every method passes through to the function (Starlette needs them named).
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "QUERY"]

routes = [
    Route("/{name}", invoke, methods=METHODS),
    Route("/{name}/{path:path}", invoke, methods=METHODS),
]
