"""HTTP for Storage (`/storage/v1`): parse, call, respond — in Supabase Storage's shapes.

Who is calling comes from the gateway as for every service, with Storage's rules: no apikey is
required (public and signed URLs are opened by browsers), a route that needs a user answers
`AccessDenied` without a valid JWT, and errors are rendered as Storage renders them (HTTP 400
with the logical status in the body; see `errors.py`).
"""

from __future__ import annotations

import email.utils
import functools
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

import asyncpg
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive

from supalite.config import StorageSettings
from supalite.gateway import Claims, GatewayError
from supalite.storage import buckets, objects, transform, tus
from supalite.storage import errors as E
from supalite.storage.context import Caller, StorageContext, describe, headers_json

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


def _not_modified(request: Request, obj: objects.ObjectRow) -> bool:
    """`If-None-Match` names the object's ETag (or is `*`): the client's copy is current."""
    inm = request.headers.get("if-none-match")
    if not inm or not obj.etag:
        return False
    return inm.strip() == "*" or obj.etag in [t.strip() for t in inm.split(",")]


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
    if _not_modified(request, obj):
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
        claims = functools.partial(transform.sign_claims, limits=transform.limits_for(ctx.settings))
        return _json(
            await objects.sign_one(ctx, _caller(request), bucket_id, name, body, transform=claims)
        )
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


# ------------------------------------------------------------------------------ render


def _renderer(request: Request) -> transform.ImageRenderer:
    """One per app, made on first use: its cache lives in the data folder, outside the
    blob store (`storage/`), so it never counts as stored bytes.  With image transformations
    off, the render routes are not there, as Supabase's are not registered then (its 404
    "Route … not found", the path as Storage sees it, under /storage/v1)."""
    state = request.app.state
    renderer: transform.ImageRenderer | None = getattr(state, "image_renderer", None)
    if renderer is None:
        settings = state.runtime.settings
        if not settings.storage.image_transformation_enabled:
            raw = request.scope.get("raw_path") or request.url.path.encode()
            path = raw.decode("latin-1").removeprefix(request.scope.get("root_path", ""))
            query = f"?{request.url.query}" if request.url.query else ""
            raise E.StorageError(
                404, "InvalidRequest", f"Route {request.method}:{path}{query} not found",
                error="Not Found", http_status=404,
            )  # fmt: skip
        renderer = transform.ImageRenderer(
            settings.data_dir / "render-cache", transform.limits_for(settings.storage)
        )
        state.image_renderer = renderer
    return renderer


async def _send_render(
    request: Request,
    renderer: transform.ImageRenderer,
    find: Callable[[], Awaitable[objects.ObjectRow]],
    options: transform.Options,
    *,
    expires: int | None = None,
) -> Response:
    """`find` is the matching `/object/…` download's own access check.  As Supabase serves
    renders: HEAD answers GET's headers (the image is rendered for its length and type), and
    the ETag is the source's, so `If-None-Match` with it is a 304 before any rendering."""
    obj = await find()
    if _not_modified(request, obj):
        return Response(status_code=304, headers=_render_headers(request, obj, options, expires))
    out = await renderer.render(
        _ctx(request), obj, find, options, request.headers.get("accept", "")
    )
    headers = _render_headers(request, out.obj, options, expires)
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(out.data))
        return Response(b"", headers=headers, media_type=out.mimetype)
    return Response(out.data, headers=headers, media_type=out.mimetype)


def _render_headers(
    request: Request, obj: objects.ObjectRow, options: transform.Options, expires: int | None
) -> dict[str, str]:
    headers = {"Accept-Ranges": "bytes", "X-Robots-Tag": "none", "Vary": "Accept"}
    if obj.etag:
        headers["ETag"] = obj.etag  # the source's, as Supabase sends it
    last_modified = _http_date(obj.metadata.get("lastModified") or obj.updated_at)
    if last_modified:
        headers["Last-Modified"] = last_modified
    if expires is not None:
        headers["Expires"] = email.utils.formatdate(expires, usegmt=True)
    else:
        headers["Cache-Control"] = obj.cache_control
    if options.segments():
        headers["X-Transformations"] = ",".join(options.segments())
    disposition = _disposition(request.query_params.get("download"))
    if disposition:
        headers["Content-Disposition"] = disposition
    return headers


def _render_options(request: Request, renderer: transform.ImageRenderer) -> transform.Options:
    return transform.parse_options(request.query_params, "querystring", renderer.limits)


@handler
async def render_authenticated(request: Request) -> Response:
    renderer = _renderer(request)
    bucket_id, name = request.path_params["bucket"], request.path_params["path"]
    ctx, caller = _ctx(request), _caller(request)
    options = _render_options(request, renderer)
    return await _send_render(
        request, renderer, lambda: objects.find_as_caller(ctx, caller, bucket_id, name), options
    )


@handler
async def render_public(request: Request) -> Response:
    renderer = _renderer(request)
    bucket_id, name = request.path_params["bucket"], request.path_params["path"]
    ctx, options = _ctx(request), _render_options(request, renderer)
    return await _send_render(
        request, renderer, lambda: objects.find_public(ctx, bucket_id, name), options
    )


@handler
async def render_sign(request: Request) -> Response:
    """The options are the token's, fixed when it was signed (the query's are ignored)."""
    renderer = _renderer(request)
    ctx = _ctx(request)
    bucket_id, name = request.path_params["bucket"], request.path_params["path"]
    claims = objects.download_claims(ctx, bucket_id, name, request.query_params.get("token"))
    options = transform.options_from_token(
        str(claims.get("transformations") or ""), claims.get("format"), renderer.limits
    )
    return await _send_render(
        request, renderer, lambda: objects.find_as_admin(ctx, bucket_id, name), options,
        expires=int(claims["exp"]),
    )  # fmt: skip


# ------------------------------------------------------------------------------ TUS


def _tus_text(status: int, body: str = "", headers: dict[str, str] | None = None) -> Response:
    h = {"Tus-Resumable": tus.TUS_VERSION, **(headers or {})}
    if status == 204 or not body:
        return Response(status_code=status, headers=h)
    return Response(body, status_code=status, headers=h, media_type="text/plain")


def tus_handler(
    fn: Callable[[Request, tus.Access], Awaitable[Response]], *, signed: bool = False
) -> Handler:
    """A TUS request: the JWT is checked first (Supabase's JSON errors), then the protocol's
    errors travel as `@tus/server` sends them: the real HTTP status and a plain-text body (for
    Storage's own errors, their message, as Supabase's `getTusError`).  `signed`: no JWT, the
    `x-signature` header is checked once the request names its object (`tus.authorize…`)."""

    @handler
    async def wrapped(request: Request) -> Response:
        if signed:
            access = tus.Access(None, request.headers.get("x-signature"))
        else:
            access = tus.Access(_caller(request))
        if request.headers.get("tus-resumable") is None:
            return _tus_text(412, "Tus-Resumable Required\n")
        if request.headers["tus-resumable"] != tus.TUS_VERSION:
            return _tus_text(412, "Unsupported version\n", {"Tus-Version": tus.TUS_VERSION})
        try:
            return await fn(request, access)
        except tus.TusError as e:
            return _tus_text(e.status, e.body, e.headers)
        except E.StorageError as e:
            return _tus_text(e.status, e.message, e.headers)

    return wrapped


def _tus_int(request: Request, name: str) -> int | None:
    value = request.headers.get(name)
    if value is None:
        return None
    if not value.isdigit():
        raise tus.TusError(400, f"Invalid {name}\n")
    return int(value)


def _tus_location(request: Request, url_id: str) -> str:
    # Behind a proxy, the address the client used (as Supabase's respectForwardedHeaders).
    proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip()
    host = request.headers.get("x-forwarded-host", "").split(",")[0].strip()
    proto = proto or request.url.scheme
    host = host or request.headers.get("host") or request.url.netloc
    return f"{proto}://{host}{request.url.path.rstrip('/')}/{url_id}"


def _tus_progress(up: tus.Upload) -> dict[str, str]:
    headers = {"Upload-Offset": str(up.offset)}
    if up.done:
        headers["Tus-Complete"] = "1"
    else:
        headers["Upload-Expires"] = email.utils.format_datetime(up.expires_at, usegmt=True)
    return headers


async def _tus_append(
    request: Request,
    caller: Caller,
    up: tus.Upload,
    offset: int,
    declared: int | None,
    length: int | None = None,
) -> tus.Upload:
    """Append the body (`declared` bytes; None: no body) to an upload this request holds;
    `length`: the Upload-Length a PATCH declares for a deferred upload."""
    with_body = declared is not None
    body = Body(request.receive)
    chunks: AsyncIterable[bytes] = body if with_body else _no_bytes()
    try:
        return await tus.append(_ctx(request), caller, up, offset, declared, chunks, length=length)
    except (tus.TusError, E.StorageError) as e:
        # Let the client read the answer instead of a reset connection (see `_upload`).
        if with_body and not body.done and not await body.drain(DRAIN_LIMIT):
            e.headers["Connection"] = "close"
        raise


async def _no_bytes() -> AsyncIterator[bytes]:
    return
    yield b""


async def _tus_create(request: Request, access: tus.Access) -> Response:
    h, ctx = request.headers, _ctx(request)
    # `@tus/server`'s order: the headers' syntax, then the extensions, then the length.
    concat = h.get("upload-concat")
    if concat is not None and concat != "partial" and not concat.startswith("final;"):
        raise tus.TusError(400, "Invalid upload-concat\n")
    deferred = h.get("upload-defer-length")
    if deferred is not None and deferred != "1":
        raise tus.TusError(400, "Invalid upload-defer-length\n")
    length = _tus_int(request, "upload-length")
    if concat is not None:
        raise tus.unsupported_concatenation()
    if (length is None) == (deferred is None):
        raise tus.invalid_length()
    with_body = h.get("content-type") == tus.OFFSET_CONTENT_TYPE
    declared = (_tus_int(request, "content-length") or 0) if with_body else None
    metadata_header = h.get("upload-metadata")
    caller, upsert, check = tus.authorize_create(
        ctx, access, metadata_header, h.get("x-upsert", "") == "true"
    )
    up = await tus.create(
        ctx, caller, length=length, metadata_header=metadata_header, upsert=upsert, check=check
    )
    headers = {"Location": _tus_location(request, up.url_id)}
    up = await _tus_append(request, caller, up, 0, declared)
    progress = _tus_progress(up)
    if not with_body:
        progress.pop("Upload-Offset")
    return _tus_text(201, "", {**headers, **progress})


async def _tus_item(request: Request, access: tus.Access) -> Response:
    ctx, url_id = _ctx(request), request.path_params["upload_id"]
    method = request.headers.get("x-http-method-override", request.method).upper()
    if method == "POST":  # a create posted to the upload's own URL, as Supabase accepts
        return await _tus_create(request, access)
    if method == "HEAD":
        up = await tus.info(ctx, tus.authorize(ctx, access, url_id), url_id)
        headers = {"Cache-Control": "no-store", "Upload-Offset": str(up.offset)}
        if up.length is None:  # creation-defer-length: not known yet
            headers["Upload-Defer-Length"] = "1"
        else:
            headers["Upload-Length"] = str(up.length)
        if up.metadata_header is not None:
            headers["Upload-Metadata"] = up.metadata_header
        return _tus_text(200, "", headers)
    if method == "DELETE":
        await tus.terminate(ctx, tus.authorize(ctx, access, url_id), url_id)
        return _tus_text(204)
    offset = _tus_int(request, "upload-offset")
    if offset is None:
        raise tus.TusError(403, "Upload-Offset header required\n")
    ctype = request.headers.get("content-type")
    if ctype is None:
        raise tus.TusError(403, "Content-Type header required\n")
    if ctype != tus.OFFSET_CONTENT_TYPE:
        raise tus.TusError(400, "Invalid content-type\n")
    declared = _tus_int(request, "content-length") or 0
    length = _tus_int(request, "upload-length")  # a deferred upload's, once
    caller = tus.authorize(ctx, access, url_id)
    up = await tus.claim(ctx, caller, url_id)
    up = await _tus_append(request, caller, up, offset, declared, length)
    return _tus_text(204, "", _tus_progress(up))


async def tus_options(request: Request) -> Response:
    """The protocol's discovery (no credentials needed, as on Supabase)."""
    return _tus_text(204, "", {
        "Tus-Version": tus.TUS_VERSION,
        "Tus-Extension": tus.EXTENSIONS,
        "Tus-Max-Size": str(_ctx(request).global_limit),
        "Access-Control-Allow-Methods": "POST, HEAD, PATCH, OPTIONS, DELETE",
        "Access-Control-Allow-Headers": TUS_ALLOW_HEADERS,
        "Access-Control-Max-Age": "86400",
    })  # fmt: skip


TUS_ALLOW_HEADERS = ", ".join([
    "Authorization", "Content-Type", "Location", "Tus-Extension", "Tus-Max-Size",
    "Tus-Resumable", "Tus-Version", "Upload-Concat", "Upload-Defer-Length", "Upload-Length",
    "Upload-Metadata", "Upload-Offset", "X-HTTP-Method-Override", "X-Requested-With",
    "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded", "X-Upsert", "Upload-Expires",
    "ApiKey", "x-signature",
])  # fmt: skip


_tus_routes = {
    (signed, item): tus_handler(_tus_item if item else _tus_create, signed=signed)
    for signed in (False, True)
    for item in (False, True)
}


async def tus_dispatch(request: Request) -> Response:
    if request.method == "OPTIONS":
        return await tus_options(request)
    return await _tus_routes[False, "upload_id" in request.path_params](request)


async def tus_signed_dispatch(request: Request) -> Response:
    """`/upload/resumable/sign`: uploads to a signed upload URL (`x-signature`, no JWT)."""
    if request.method == "OPTIONS":
        return await tus_options(request)
    return await _tus_routes[True, "upload_id" in request.path_params](request)


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


@handler
async def storage_config(request: Request) -> Response:
    """supalite's own (Supabase has this in its Management API only): the global limit,
    features and backend, for the MCP server's get_storage_config; service_role only."""
    if _claims(request).role != "service_role":
        raise E.access_denied("the storage config needs the service_role (or secret) key")
    return _json(describe(_ctx(request).settings))


routes = [
    Route("/status", storage_health, methods=["GET"]),
    Route("/config", storage_config, methods=["GET"]),
    Route("/upload/resumable/sign", tus_signed_dispatch, methods=["POST", "OPTIONS"]),
    Route("/upload/resumable/sign/", tus_signed_dispatch, methods=["POST", "OPTIONS"]),
    Route("/upload/resumable/sign/{upload_id}", tus_signed_dispatch,
          methods=["HEAD", "PATCH", "DELETE", "POST", "OPTIONS"]),
    Route("/upload/resumable", tus_dispatch, methods=["POST", "OPTIONS"]),
    Route("/upload/resumable/", tus_dispatch, methods=["POST", "OPTIONS"]),
    Route("/upload/resumable/{upload_id}", tus_dispatch,
          methods=["HEAD", "PATCH", "DELETE", "POST", "OPTIONS"]),
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
    Route("/render/image/authenticated/{bucket}/{path:path}", render_authenticated,
          methods=["GET", "HEAD"]),
    Route("/render/image/public/{bucket}/{path:path}", render_public, methods=["GET", "HEAD"]),
    Route("/render/image/sign/{bucket}/{path:path}", render_sign, methods=["GET", "HEAD"]),
]  # fmt: skip


async def not_running(request: Request) -> Response:
    """`[storage] enabled = false`: the Supabase CLI then starts no Storage container, and its
    Kong still routes `/storage/v1/` to it, so every request gets Kong's answer for an upstream
    whose name does not resolve (supabase/cli#2065)."""
    return JSONResponse({"message": "name resolution failed"}, status_code=503)


_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
disabled_routes = [Route("/{path:path}", not_running, methods=_ALL_METHODS)]


def routes_for(settings: StorageSettings) -> list[Route]:
    """What `/storage/v1` serves: the API, or (Storage disabled) Kong's answer for it."""
    return routes if settings.enabled else disabled_routes
