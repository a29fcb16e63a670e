"""The admin API for deployed functions and their secrets, service_role only, mounted at
`/admin/v1`.  Shapes follow Supabase's Management API (`/v1/projects/{ref}/functions…`,
`/v1/projects/{ref}/secrets`) without the project part:

    GET    /admin/v1/functions                  → [function]
    GET    /admin/v1/functions/{slug}           → function + files: [{name, content}]
    POST   /admin/v1/functions/deploy?slug=NAME   {name?, entrypoint_path?, verify_jwt?,
                                                  import_map_path?, files: [{name, content}]}
                                                → function (201 created, 200 new version)
    DELETE /admin/v1/functions/{slug}           → {}
    GET    /admin/v1/secrets                    → [{name, value: sha256 digest, updated_at}]
    POST   /admin/v1/secrets    [{name, value}] → 201 {}
    DELETE /admin/v1/secrets    ["NAME", …]     → {removed: [...]}

Errors are `{message}` with a 4xx status (401/403 for credentials, as /pg answers them).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from supalite.functions import deploy, secrets, store, syntax
from supalite.functions.deploy import AdminError
from supalite.functions.runtime import find_deno
from supalite.gateway import GatewayError

_MAX_BODY = deploy.MAX_TOTAL_BYTES * 2 + 64 * 1024  # JSON escaping can double the size


def _authorize(request: Request) -> None:
    try:
        claims = request.app.state.gateway.authenticate(
            request.headers, request.query_params, require_apikey=False
        )
    except GatewayError as e:
        raise AdminError(e.status, e.message) from e
    if claims.token is None:
        raise AdminError(401, "No API key found in request")
    if claims.role != "service_role":
        raise AdminError(403, "the admin API needs the service_role (or secret) key")


async def _json(request: Request) -> Any:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > _MAX_BODY:
        raise AdminError(413, f"request body over {_MAX_BODY} bytes")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > _MAX_BODY:
            raise AdminError(413, f"request body over {_MAX_BODY} bytes")
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as e:
        raise AdminError(400, f"request body is not JSON: {e}") from e


def _changed(request: Request) -> None:
    """This process sees a change at once; the others through the notification."""
    runtime = getattr(request.app.state, "functions", None)
    if runtime is not None and runtime.deployed is not None:
        runtime.deployed.invalidate()


Handler = Callable[[Request, asyncpg.Connection, Any], Awaitable[Response]]


def _endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            _authorize(request)
            # The body is read before a pooled connection is taken: a slow upload holds none.
            body = await _json(request) if request.method in ("POST", "DELETE") else None
            async with request.app.state.pools.admin.acquire() as conn:
                return await handler(request, conn, body)
        except AdminError as e:
            return JSONResponse({"message": e.message}, status_code=e.status)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
            return JSONResponse({"message": f"database error: {e}"}, status_code=503)

    return endpoint


async def list_functions(request: Request, conn: asyncpg.Connection, _: Any) -> Response:
    return JSONResponse([store.as_api(r) for r in await store.list_functions(conn)])


async def get_function(request: Request, conn: asyncpg.Connection, _: Any) -> Response:
    slug = deploy.check_slug(request.path_params["slug"])
    row = await store.get_function(conn, slug, files=True)
    if row is None:
        raise AdminError(404, f"Function {slug} not found")
    files = json.loads(row["files"])
    body = store.as_api(row)
    body["files"] = [{"name": n, "content": files[n]} for n in sorted(files)]
    return JSONResponse(body)


async def deploy_function(request: Request, conn: asyncpg.Connection, body: Any) -> Response:
    d = deploy.parse_deployment(request.query_params.get("slug"), body)
    settings = request.app.state.runtime.settings
    # Refused before it is stored: the version deployed now keeps serving.
    await syntax.check(d.files, find_deno(settings.functions.deno, settings.project_dir))
    row, created = await store.deploy(conn, d)
    _changed(request)
    return JSONResponse(store.as_api(row), status_code=201 if created else 200)


async def delete_function(request: Request, conn: asyncpg.Connection, _: Any) -> Response:
    slug = deploy.check_slug(request.path_params["slug"])
    if not await store.delete(conn, slug):
        raise AdminError(404, f"Function {slug} not found")
    _changed(request)
    return JSONResponse({})


async def secrets_endpoint(request: Request, conn: asyncpg.Connection, body: Any) -> Response:
    if request.method == "GET":
        return JSONResponse(await store.list_secrets(conn))
    if request.method == "POST":
        values = secrets.parse_secrets(body)
        cipher = secrets.cipher(request.app.state.runtime.keys.jwt_secret)
        await store.set_secrets(
            conn, [(n, cipher.seal(v), secrets.digest(v)) for n, v in values.items()]
        )
        _changed(request)
        return JSONResponse({}, status_code=201)
    removed = await store.unset_secrets(conn, secrets.parse_names(body))
    _changed(request)
    return JSONResponse({"removed": removed})


routes = [
    Route("/functions", _endpoint(list_functions), methods=["GET"]),
    Route("/functions/deploy", _endpoint(deploy_function), methods=["POST"]),
    Route("/functions/{slug}", _endpoint(get_function), methods=["GET"]),
    Route("/functions/{slug}", _endpoint(delete_function), methods=["DELETE"]),
    Route("/secrets", _endpoint(secrets_endpoint), methods=["GET", "POST", "DELETE"]),
]
