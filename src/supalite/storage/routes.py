"""HTTP for Storage (`/storage/v1`): parse, call, respond — in Supabase Storage's shapes.

Who is calling comes from the gateway as for every service, with Storage's rules: no apikey is
required (public and signed URLs are opened by browsers), a route that needs a user answers
`AccessDenied` without a valid JWT, and errors are rendered as Storage renders them (HTTP 400
with the logical status in the body; see `errors.py`).
"""

from __future__ import annotations

import email.utils
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

import asyncpg
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive

from supalite.gateway import Claims, GatewayError
from supalite.storage import buckets, objects
from supalite.storage import errors as E
from supalite.storage.context import Caller, StorageContext, headers_json

log = logging.getLogger("supalite.storage")
JSON_TYPE = "application/json; charset=utf-8"
MAX_JSON_BODY = 2 * 1024 * 1024
# After refusing an upload, read (and drop) up to this much of the rest of its body so the
# client sees the answer instead of a reset connection; past it, the connection is closed.
DRAIN_LIMIT = 64 * 1024 * 1024

Handler = Callable[[Request], Awaitable[Response]]


class Body:
    """The request body as an async iterable of chunks, read straight from ASGI `receive`
    (never buffered), which can tell whether it was read to the end and drop the rest."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while not self.done:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect
            body = message.get("body", b"")
            self.done = not message.get("more_body", False)
            if body:
                yield body

    async def drain(self, limit: int) -> bool:
        seen = 0
        try:
            async for chunk in self:
                seen += len(chunk)
                if seen > limit:
                    return False
        except ClientDisconnect:
            return False
        return True


def _ctx(request: Request) -> StorageContext:
    ctx: StorageContext = request.app.state.storage
    return ctx


def _jose_message(e: GatewayError) -> str:
    """The gateway's reasons, in the words Supabase Storage (jose) uses."""
    if "expired" in e.message:
        return '"exp" claim timestamp check failed'
    if "Signature" in e.message or "signature" in e.message:
        return "signature verification failed"
    return "Invalid Compact JWS"


def _claims(request: Request) -> Claims:
    try:
        claims: Claims = request.app.state.gateway.authenticate(
            request.headers, request.query_params, require_apikey=False
        )
    except GatewayError as e:
        raise E.access_denied(_jose_message(e)) from e
    if claims.token is None:
        raise E.access_denied("Invalid Compact JWS")
    request.state.role = claims.role
    return claims


def _caller(request: Request) -> Caller:
    return Caller(_claims(request), request.method, request.url.path, headers_json(request.headers))


def error_response(e: E.StorageError) -> Response:
    return JSONResponse(e.body(), status_code=e.response_status, headers=e.headers)


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    if isinstance(data, str):
        return Response(data, status_code=status, media_type=JSON_TYPE, headers=headers)
    return JSONResponse(data, status_code=status, headers=headers)


async def _read_json(request: Request) -> Any:
    size = 0
    chunks = []
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_JSON_BODY:
            raise E.StorageError(413, "EntityTooLarge", "Request body is too large")
        chunks.append(chunk)
    return buckets.parse_json(b"".join(chunks))


def handler(fn: Handler) -> Handler:
    """Errors as values, rendered here; the database and the client going away as Supabase
    Storage answers them."""

    async def wrapped(request: Request) -> Response:
        try:
            return await fn(request)
        except E.StorageError as e:
            return error_response(e)
        except ClientDisconnect:
            return Response(status_code=499)
        except (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError) as e:
            log.warning("storage: database or disk unavailable: %s", e)
            return error_response(E.internal())
        except TimeoutError:
            return error_response(E.database_unavailable())

    return wrapped


# ------------------------------------------------------------------------------ buckets


@handler
async def bucket_collection(request: Request) -> Response:
    ctx, caller = _ctx(request), _caller(request)
    if request.method == "POST":
        return _json(await buckets.create_bucket(ctx, caller, await _read_json(request)))
    q = request.query_params
    limit = _query_int(q.get("limit"), None)
    offset = _query_int(q.get("offset"), 0) or 0
    out = await buckets.list_buckets(
        ctx, caller, limit=limit, offset=offset, sort_column=q.get("sortColumn") or "name",
        sort_order=(q.get("sortOrder") or "asc").lower(), search=q.get("search"),
    )  # fmt: skip
    return _json(out)


def _query_int(value: str | None, default: int | None) -> int | None:
    if value is None or value == "":
        return default
    if not value.isdigit():
        raise E.invalid_parameter("querystring must be integer")
    return int(value)


@handler
async def bucket_item(request: Request) -> Response:
    ctx, caller = _ctx(request), _caller(request)
    bucket_id = request.path_params["bucket"]
    if request.method == "PUT":
        body = await _read_json(request)
        return _json(await buckets.update_bucket(ctx, caller, bucket_id, body))
    if request.method == "DELETE":
        return _json(await buckets.delete_bucket(ctx, caller, bucket_id))
    return _json(await buckets.get_bucket(ctx, caller, bucket_id))


@handler
async def bucket_empty(request: Request) -> Response:
    ctx, caller = _ctx(request), _caller(request)
    return _json(await buckets.empty_bucket(ctx, caller, request.path_params["bucket"]))


# ------------------------------------------------------------------------------ uploads


async def _upload(request: Request, run: Callable[[Body], Awaitable[dict[str, Any]]]) -> Response:
    body = Body(request.receive)
    try:
        result = await run(body)
    except E.StorageError as e:
        if not body.done and not await body.drain(DRAIN_LIMIT):
            e.headers["Connection"] = "close"
        raise
    # A multipart body may go on after the file part (its closing boundary, later fields):
    # read it, so the connection stays usable for the client's next request.
    if not body.done and not await body.drain(MAX_JSON_BODY):
        return _json(result, headers={"Connection": "close"})
    return _json(result)


@handler
async def object_item(request: Request) -> Response:
    bucket_id, name = request.path_params["bucket"], request.path_params["path"]
    method = request.method
    ctx, caller = _ctx(request), _caller(request)
    if method in ("GET", "HEAD"):
        return await _send_object(
            request, lambda: objects.find_as_caller(ctx, caller, bucket_id, name)
        )
    if method == "DELETE":
        return _json(await objects.remove_one(ctx, caller, bucket_id, name))
    upsert = method == "PUT" or request.headers.get("x-upsert", "").lower() == "true"
    return await _upload(
        request,
        lambda body: objects.upload(
            ctx, caller, bucket_id, name, request.headers, body, upsert=upsert
        ),
    )


@handler
async def upload_sign(request: Request) -> Response:
    ctx = _ctx(request)
    bucket_id, name = request.path_params["bucket"], request.path_params["path"]
    if request.method == "POST":
        caller = _caller(request)
        return _json(await objects.sign_upload(ctx, caller, bucket_id, name, request.headers))
    token = request.query_params.get("token")
    return await _upload(
        request,
        lambda body: objects.upload_signed(ctx, bucket_id, name, token, request.headers, body),
    )


# ------------------------------------------------------------------------------ downloads


def _http_date(value: Any) -> str | None:
    if isinstance(value, datetime):
        return email.utils.format_datetime(value, usegmt=True)
    if isinstance(value, str):
        try:
            return email.utils.format_datetime(
                datetime.fromisoformat(value.replace("Z", "+00:00")), usegmt=True
            )
        except ValueError:
            return None
    return None


def _disposition(download: str | None) -> str | None:
    if download is None:
        return None
    if download == "":
        return "attachment;"
    name = quote(download, safe="")
    return f"attachment; filename={name}; filename*=UTF-8''{name}"


async def _send_object(
    request: Request,
    find: Callable[[], Awaitable[objects.ObjectRow]],
    *,
    expires: int | None = None,
) -> Response:
    obj = await find()
    headers = {"Accept-Ranges": "bytes", "X-Robots-Tag": "none"}
    if obj.etag:
        headers["ETag"] = obj.etag
    last_modified = _http_date(obj.metadata.get("lastModified") or obj.updated_at)
    if last_modified:
        headers["Last-Modified"] = last_modified
    if expires is not None:
        headers["Expires"] = email.utils.formatdate(expires, usegmt=True)
    else:
        headers["Cache-Control"] = obj.cache_control
    disposition = _disposition(request.query_params.get("download"))
    if disposition:
        headers["Content-Disposition"] = disposition
    inm = request.headers.get("if-none-match")
    if inm and obj.etag and (inm.strip() == "*" or obj.etag in [t.strip() for t in inm.split(",")]):
        return Response(status_code=304, headers=headers)
    headers["Content-Type"] = obj.mimetype
    if request.method == "HEAD":
        size = obj.metadata.get("size")
        if isinstance(size, int):
            headers["Content-Length"] = str(size)
        return Response(status_code=200, headers=headers)
    obj, blob = await objects.open_current(_ctx(request), obj, find)
    try:
        rng = objects.parse_range(request.headers.get("range"), blob.size) if blob.size else None
    except E.StorageError:
        await blob.close()
        raise
    status = 200
    first, last = 0, blob.size - 1
    if rng is not None:
        first, last = rng
        status = 206
        headers["Content-Range"] = f"bytes {first}-{last}/{blob.size}"
    headers["Content-Length"] = str(max(last - first + 1, 0))
    if blob.size == 0:
        await blob.close()
        return Response(b"", status_code=status, headers=headers, media_type=None)
    return StreamingResponse(blob.read(first, last), status_code=status, headers=headers)


@handler
async def object_authenticated(request: Request) -> Response:
    bucket_id, name = request.path_params["bucket"], request.path_params["path"]
    ctx, caller = _ctx(request), _caller(request)
    return await _send_object(request, lambda: objects.find_as_caller(ctx, caller, bucket_id, name))


@handler
async def object_public(request: Request) -> Response:
    bucket_id, name = request.path_params["bucket"], request.path_params["path"]
    ctx = _ctx(request)
    return await _send_object(request, lambda: objects.find_public(ctx, bucket_id, name))


@handler
async def object_sign(request: Request) -> Response:
    ctx = _ctx(request)
    bucket_id, name = request.path_params["bucket"], request.path_params["path"]
    if request.method == "POST":
        body = await _read_json(request)
        return _json(await objects.sign_one(ctx, _caller(request), bucket_id, name, body))
    token = request.query_params.get("token")
    exp = objects.verify_download(ctx, bucket_id, name, token)
    return await _send_object(
        request, lambda: objects.find_as_admin(ctx, bucket_id, name), expires=exp
    )


@handler
async def object_sign_many(request: Request) -> Response:
    ctx, caller = _ctx(request), _caller(request)
    body = await _read_json(request)
    return _json(await objects.sign_many(ctx, caller, request.path_params["bucket"], body))


def _info_response(obj: objects.ObjectRow) -> Response:
    headers = {"Cache-Control": obj.cache_control}
    if obj.etag:
        headers["ETag"] = obj.etag
    last_modified = _http_date(obj.metadata.get("lastModified") or obj.updated_at)
    if last_modified:
        headers["Last-Modified"] = last_modified
    return JSONResponse(objects.info_body(obj), headers=headers)


@handler
async def object_info(request: Request) -> Response:
    bucket_id, name = request.path_params["bucket"], request.path_params["path"]
    obj = await objects.find_as_caller(_ctx(request), _caller(request), bucket_id, name)
    return _info_response(obj)


@handler
async def object_info_public(request: Request) -> Response:
    bucket_id, name = request.path_params["bucket"], request.path_params["path"]
    return _info_response(await objects.find_public(_ctx(request), bucket_id, name))


# ------------------------------------------------------------------------------ the rest


@handler
async def object_list(request: Request) -> Response:
    ctx, caller = _ctx(request), _caller(request)
    body = await _read_json(request)
    return _json(await objects.list_objects(ctx, caller, request.path_params["bucket"], body))


@handler
async def object_list_v2(request: Request) -> Response:
    ctx, caller = _ctx(request), _caller(request)
    body = await _read_json(request)
    return _json(await objects.list_objects_v2(ctx, caller, request.path_params["bucket"], body))


@handler
async def object_move(request: Request) -> Response:
    ctx, caller = _ctx(request), _caller(request)
    return _json(await objects.move(ctx, caller, await _read_json(request)))


@handler
async def object_copy(request: Request) -> Response:
    ctx, caller = _ctx(request), _caller(request)
    return _json(await objects.copy(ctx, caller, await _read_json(request), request.headers))


@handler
async def object_remove_many(request: Request) -> Response:
    ctx, caller = _ctx(request), _caller(request)
    body = await _read_json(request)
    return _json(await objects.remove_many(ctx, caller, request.path_params["bucket"], body))


async def storage_health(request: Request) -> Response:
    return JSONResponse({"healthy": True})


routes = [
    Route("/status", storage_health, methods=["GET"]),
    Route("/bucket", bucket_collection, methods=["GET", "POST"]),
    Route("/bucket/", bucket_collection, methods=["GET", "POST"]),
    Route("/bucket/{bucket}/empty", bucket_empty, methods=["POST"]),
    Route("/bucket/{bucket}", bucket_item, methods=["GET", "PUT", "DELETE"]),
    Route("/object/list/{bucket}", object_list, methods=["POST"]),
    Route("/object/list-v2/{bucket}", object_list_v2, methods=["POST"]),
    Route("/object/move", object_move, methods=["POST"]),
    Route("/object/copy", object_copy, methods=["POST"]),
    Route("/object/upload/sign/{bucket}/{path:path}", upload_sign, methods=["POST", "PUT"]),
    Route("/object/sign/{bucket}/{path:path}", object_sign, methods=["GET", "HEAD", "POST"]),
    Route("/object/sign/{bucket}", object_sign_many, methods=["POST"]),
    Route("/object/public/{bucket}/{path:path}", object_public, methods=["GET", "HEAD"]),
    Route("/object/authenticated/{bucket}/{path:path}", object_authenticated,
          methods=["GET", "HEAD"]),
    Route("/object/info/public/{bucket}/{path:path}", object_info_public, methods=["GET"]),
    Route("/object/info/authenticated/{bucket}/{path:path}", object_info, methods=["GET"]),
    Route("/object/info/{bucket}/{path:path}", object_info, methods=["GET"]),
    Route("/object/{bucket}/{path:path}", object_item,
          methods=["GET", "HEAD", "POST", "PUT", "DELETE"]),
    Route("/object/{bucket}", object_remove_many, methods=["DELETE"]),
]  # fmt: skip
