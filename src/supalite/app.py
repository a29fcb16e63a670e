"""build_app(runtime): mounts the services on one ASGI app and owns startup/shutdown."""

from __future__ import annotations

import gc
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from supalite import __version__
from supalite.auth import inbox_routes
from supalite.auth import routes as auth_routes
from supalite.auth.context import AuthContext
from supalite.auth.mail import Mailer
from supalite.auth.ratelimit import RateLimiter
from supalite.auth.tokens import TokenSigner
from supalite.cron.scheduler import CronScheduler
from supalite.db.pool import create_pools
from supalite.db.schema_cache import SchemaCacheHolder
from supalite.edge import EdgeMiddleware
from supalite.functions import admin as functions_admin
from supalite.functions import routes as functions_routes
from supalite.functions.runtime import build_functions
from supalite.gateway import Gateway
from supalite.logs import RequestLog, log_path
from supalite.mcp.mount import McpEndpoint, build_mcp_http
from supalite.pg import routes as pg_routes
from supalite.realtime import routes as realtime_routes
from supalite.realtime.service import RealtimeService
from supalite.rest import routes as rest_routes
from supalite.runtime import Runtime
from supalite.storage import routes as storage_routes
from supalite.storage.context import StorageContext

# Headers the official clients read from responses, exposed to browsers as Supabase does.
_EXPOSE_HEADERS = [
    "Content-Range", "Range-Unit", "Content-Profile", "Content-Location", "Preference-Applied",
    "Location", "X-Supabase-Api-Version", "x-sb-error-code", "X-Total-Count", "Link",
    # TUS resumable uploads (Storage): what tus-js-client reads in a browser — the response
    # headers of @tus/server's EXPOSED_HEADERS, which Supabase's TUS endpoint sends.
    "Upload-Offset", "Upload-Length", "Upload-Expires", "Upload-Metadata", "Tus-Resumable",
    "Tus-Version", "Tus-Extension", "Tus-Max-Size", "Upload-Concat", "Upload-Defer-Length",
]  # fmt: skip


async def health(request: Request) -> Response:
    """Overall health: the process answers and the database answers."""
    services = {"rest": "ok", "auth": "ok", "storage": "ok", "realtime": "ok"}
    status = 200
    try:
        async with request.app.state.pools.admin.acquire(timeout=5) as conn:
            await conn.fetchval("select 1")
        services["db"] = "ok"
    except Exception as e:  # the point is to report any failure, not to raise it
        services["db"] = f"error: {type(e).__name__}"
        status = 503
    body = {
        "status": "ok" if status == 200 else "unavailable",
        "version": __version__,
        "database": request.app.state.runtime.database_label,
        "services": services,
    }
    return JSONResponse(body, status_code=status)


async def not_found(request: Request, exc: Exception) -> Response:
    """Paths no service serves, answered as Supabase's gateway (Kong) answers them."""
    return JSONResponse({"message": "no Route matched with those values"}, status_code=404)


async def internal_error(request: Request, exc: Exception) -> Response:
    """Whatever a service did not handle: a JSON 500, the details only in the server log."""
    return JSONResponse({"message": "An unexpected error occurred"}, status_code=500)


async def service_health(request: Request) -> Response:
    name = request.path_params["service"]
    if name not in ("rest", "auth", "storage", "realtime", "db"):
        return JSONResponse({"message": f"no service '{name}'"}, status_code=404)
    return await health(request)


def build_app(runtime: Runtime) -> Starlette:
    settings = runtime.settings
    log = RequestLog(log_path(settings.data_dir))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.pools = await create_pools(runtime.admin_url, runtime.api_db_url, settings.db)
        app.state.mailer = Mailer(
            settings.auth, app.state.pools.admin, project_dir=settings.project_dir
        )
        app.state.auth = AuthContext(
            settings, app.state.pools.admin, TokenSigner(runtime.keys),
            RateLimiter(settings.auth.rate_limits), app.state.mailer,
        )  # fmt: skip
        app.state.schema = SchemaCacheHolder(
            lambda: asyncpg.connect(runtime.admin_url), settings.api.schemas
        )
        app.state.storage = None  # `[storage] enabled = false`: nothing of Storage runs
        if settings.storage.enabled:
            app.state.storage = await StorageContext.start(
                settings, runtime.keys.jwt_secret, app.state.pools.api, app.state.pools.admin
            )
        app.state.cron = CronScheduler(runtime.admin_url, app.state.pools.admin, settings.cron)
        try:
            await app.state.schema.start()
            if settings.functions.enabled:  # worker processes start on the first call
                app.state.functions = build_functions(runtime, log)
                await app.state.functions.start()
            await app.state.cron.start()  # only when the `cron` schema is supalite's emulation
            if settings.realtime.enabled:
                app.state.realtime = RealtimeService(runtime.admin_url)
                await app.state.realtime.start()
            await app.state.mcp.start()  # the streamable HTTP session manager of /mcp
            # What startup built lives as long as the process: out of the collector's sight.  A
            # fan-out allocates fast, and with CPython's default thresholds a full collection
            # (every object: 100-600 ms with 1,000 sockets) ran every few seconds; see
            # docs/realtime.md.
            gc.freeze()
            gc.set_threshold(20_000, 20, 50)
            yield
        finally:
            await app.state.mcp.stop()
            if getattr(app.state, "realtime", None) is not None:
                await app.state.realtime.stop()
            if getattr(app.state, "functions", None) is not None:
                await app.state.functions.stop()
            await app.state.cron.stop()
            if app.state.storage is not None:
                await app.state.storage.close()
            await app.state.schema.stop()
            await app.state.pools.close()
            log.close()

    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET", "HEAD"]),
            Route("/health/{service}", service_health, methods=["GET", "HEAD"]),
            Mount("/rest/v1", app=rest_routes.DataApi()),
            Mount("/auth/v1", routes=auth_routes.routes),
            Mount("/storage/v1", routes=storage_routes.routes_for(settings.storage)),
            Mount("/realtime/v1", routes=realtime_routes.routes),
            Mount("/inbox/v1", routes=inbox_routes.routes),
            Mount("/functions/v1", routes=functions_routes.routes),
            Mount("/pg", routes=pg_routes.routes),
            Mount("/admin/v1", routes=functions_admin.routes),  # deployed functions, secrets
            Route("/mcp", McpEndpoint()),
        ],
        middleware=[
            Middleware(
                EdgeMiddleware,  # CORS and the request log
                log=log,
                allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
                expose_headers=_EXPOSE_HEADERS,
                max_age=86400,
            ),
        ],
        lifespan=lifespan,
        exception_handlers={404: not_found, Exception: internal_error},
    )
    app.state.runtime = runtime
    app.state.gateway = Gateway(runtime.keys, anon_role=settings.api.anon_role)
    app.state.mcp = build_mcp_http(runtime, app, app.state.gateway)
    return app


ENV_LAUNCH = "SUPALITE_LAUNCH"


def app_from_env() -> Starlette:
    """Factory for worker processes (`--workers N`): the parent passes how it loaded settings."""
    from supalite.config import load_settings
    from supalite.runtime import build_runtime

    launch = json.loads(os.environ[ENV_LAUNCH])
    settings = load_settings(
        launch["project_dir"], config_file=launch.get("config_file"), overrides=launch["overrides"]
    )
    return build_app(build_runtime(settings))
