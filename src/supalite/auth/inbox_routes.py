"""`/inbox/v1`: the built-in mail catcher over HTTP, for the service_role only.

Magic links and codes in these messages are credentials, so the anon key (which ships in every
browser bundle) must not read them.  Errors are `{"message": …}`, as the gateway's own.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from supalite.auth import mail
from supalite.gateway import GatewayError

MAX_LIMIT = mail.INBOX_KEEP
DEFAULT_LIMIT = 50


_DIGITS = re.compile(r"[0-9]{1,19}")  # ASCII digits only: str.isdigit() also takes "²"


class _BadRequest(Exception):
    """A malformed parameter: answered 400 with this message."""


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


def _authorize(request: Request) -> JSONResponse | None:
    """None when the caller is the service_role, else the response to send instead."""
    try:
        claims = request.app.state.gateway.authenticate(request.headers, request.query_params)
    except GatewayError as e:
        return JSONResponse(e.kong_body(), status_code=e.status, headers=e.headers)
    if claims.role != "service_role":
        return _error("the mail inbox is only readable with the service_role key", 403)
    return None


def _to_param(request: Request) -> str | None:
    to = request.query_params.get("to")
    if to is None:
        return None
    to = to.strip()
    if not to or len(to) > 320:  # 320: the longest address RFC 3696 allows
        raise _BadRequest("'to' must be an email address")
    return to


def _limit_param(request: Request) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise _BadRequest(f"'limit' must be an integer between 1 and {MAX_LIMIT}")
    return int(raw)


def _id_param(request: Request) -> int:
    raw = request.path_params["id"]
    if not _DIGITS.fullmatch(raw) or int(raw) > 2**63 - 1:  # the column is a bigint
        raise _BadRequest("message id must be a positive integer")
    return int(raw)


async def list_messages(request: Request) -> Response:
    if (denied := _authorize(request)) is not None:
        return denied
    try:
        to, limit = _to_param(request), _limit_param(request)
    except _BadRequest as e:
        return _error(str(e), 400)
    found = await mail.list_messages(request.app.state.pools.admin, to=to, limit=limit)
    return JSONResponse([m.as_json() for m in found])


async def get_message(request: Request) -> Response:
    if (denied := _authorize(request)) is not None:
        return denied
    try:
        message_id = _id_param(request)
    except _BadRequest as e:
        return _error(str(e), 400)
    found = await mail.get_message(request.app.state.pools.admin, message_id)
    if found is None:
        return _error("message not found", 404)
    return JSONResponse(found.as_json())


async def clear_messages(request: Request) -> Response:
    if (denied := _authorize(request)) is not None:
        return denied
    try:
        to = _to_param(request)
    except _BadRequest as e:
        return _error(str(e), 400)
    deleted = await mail.clear_messages(request.app.state.pools.admin, to=to)
    return JSONResponse({"deleted": deleted})


routes = [
    Route("/messages", list_messages, methods=["GET"]),
    Route("/messages", clear_messages, methods=["DELETE"]),
    Route("/messages/{id}", get_message, methods=["GET"]),
]
