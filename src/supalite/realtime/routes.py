"""Transport for Realtime (`/realtime/v1`): the Phoenix websocket and the REST broadcast API."""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from supalite.gateway import Claims, GatewayError
from supalite.realtime import protocol
from supalite.realtime.connection import Connection
from supalite.realtime.protocol import UserBroadcast
from supalite.realtime.service import RealtimeService

log = logging.getLogger("supalite.realtime")


async def _deny(ws: WebSocket, status: int, message: str) -> None:
    """Refuse the upgrade with Supabase's `{error}` body where the server can send one."""
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        await ws.send_denial_response(JSONResponse({"error": message}, status_code=status))
    else:
        await ws.close(1008, message)


async def websocket(ws: WebSocket) -> None:
    service: RealtimeService | None = getattr(ws.app.state, "realtime", None)
    vsn = protocol.parse_vsn(ws.query_params.get("vsn"))
    if service is None:
        await _deny(ws, 503, "Realtime is disabled")
        return
    if vsn is None:
        await _deny(ws, 403, "Unsupported protocol version (vsn)")
        return
    headers: dict[str, str] = {k.lower(): v for k, v in ws.headers.items()}
    if "x-api-key" in headers and "apikey" not in headers:
        headers["apikey"] = headers["x-api-key"]
    try:
        claims = ws.app.state.gateway.authenticate(headers, dict(ws.query_params))
    except GatewayError as e:
        message = "API key is missing" if "No API key" in e.message else e.message
        await _deny(ws, 401, message)
        return
    limits = ws.app.state.runtime.settings.realtime
    # Supabase's connect checks (`TenantRateLimiters.check_tenant`), in its order.
    if service.users.total() >= limits.max_concurrent_users:
        await _deny(ws, 429, "Too many connected users")
        return
    if service.joins.avg >= limits.max_joins_per_second:
        await _deny(ws, 429, "Too many joins per second")
        return
    await ws.accept()
    conn = Connection(ws, service, ws.app.state.gateway, vsn, claims, claims.token or "", limits)
    await conn.run()


# ---------------------------------------------------------------------- REST broadcast


def _error(status: int, message: str) -> Response:
    return JSONResponse({"message": message}, status_code=status)


async def _send(request: Request, claims: Claims, messages: list[dict[str, Any]]) -> None:
    service: RealtimeService = request.app.state.realtime
    for m in messages:
        topic = m["topic"]
        if m["private"] and claims.role != "service_role":
            policies = await service.authorize(claims, topic, ["broadcast"])
            if not policies.get("broadcast", {}).get("write"):
                continue
        key = ("private:" if m["private"] else "public:") + topic
        service.broadcast(key, m["payload"])


def _authenticate(request: Request) -> Claims | Response:
    if getattr(request.app.state, "realtime", None) is None:
        return _error(503, "Realtime is disabled")
    try:
        claims: Claims = request.app.state.gateway.authenticate(
            request.headers, request.query_params
        )
    except GatewayError as e:
        return JSONResponse(e.kong_body(), status_code=e.status)
    return claims


async def broadcast(request: Request) -> Response:
    """`POST /api/broadcast` with `{messages: [{topic, event, payload, private}]}` → 202."""
    claims = _authenticate(request)
    if isinstance(claims, Response):
        return claims
    try:
        body = json.loads(await request.body())
    except ValueError:
        return _error(400, "Request body must be JSON")
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list) or not messages:
        return _error(422, "messages must be a non-empty list")
    out = []
    for m in messages:
        if not isinstance(m, dict) or not isinstance(m.get("topic"), str) or not m["topic"]:
            return _error(422, "each message needs a topic")
        if not isinstance(m.get("event"), str):
            return _error(422, "each message needs an event")
        payload = {"type": "broadcast", "event": m["event"], "payload": m.get("payload", {})}
        out.append({"topic": m["topic"], "event": m["event"], "payload": payload,
                    "private": m.get("private") is True})  # fmt: skip
    await _send(request, claims, out)
    return Response(status_code=202)


async def broadcast_event(request: Request) -> Response:
    """`POST /api/broadcast/{topic}/events/{event}[?private=true]` (realtime-js `httpSend`)."""
    claims = _authenticate(request)
    if isinstance(claims, Response):
        return claims
    topic, event = request.path_params["topic"], request.path_params["event"]
    private = request.query_params.get("private") == "true"
    raw = await request.body()
    payload: dict[str, Any] | UserBroadcast
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            json.loads(raw or b"{}")
        except ValueError:
            return _error(400, "Request body must be JSON")
        payload = UserBroadcast(event, raw or b"{}", True)
    else:
        payload = UserBroadcast(event, raw, False)
    service: RealtimeService = request.app.state.realtime
    if private and claims.role != "service_role":
        policies = await service.authorize(claims, topic, ["broadcast"])
        if not policies.get("broadcast", {}).get("write"):
            return _error(403, "You do not have permissions to broadcast to this topic")
    service.broadcast(("private:" if private else "public:") + topic, payload)
    return Response(status_code=202)


routes = [
    WebSocketRoute("/websocket", websocket),
    Route("/api/broadcast", broadcast, methods=["POST"]),
    Route("/api/broadcast/{topic}/events/{event}", broadcast_event, methods=["POST"]),
]
