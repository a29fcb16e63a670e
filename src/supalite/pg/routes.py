"""HTTP for the admin SQL path (`/pg`), service_role only.

    POST /pg/query       {query, parameters?, read_only?, max_rows?, max_bytes?}
                         → {columns, rows, row_count, truncated, command}
    GET  /pg/migrations  → [{version, name}]
    POST /pg/migrations  {name, query} → {version, name, statements, file?}
    GET  /pg/logs?service=&since=&until=&limit=  → {entries (newest first), limit, more}

Errors: `{code, message, detail?, hint?, position?}` with Postgres's SQLSTATE as the code.

Each call gets a connection of its own, closed afterwards, rather than one from the admin
pool: the SQL is an agent's, and a `SET ROLE`, `SET SESSION AUTHORIZATION`, temporary table
or advisory lock it leaves behind must not outlive the call in a connection other services use.
Read-only calls log in as `supalite_read_only` (service.ensure_read_only_login), a role that
cannot write and cannot switch to one that can.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from supalite.db.pool import with_credentials
from supalite.gateway import GatewayError
from supalite.logs import log_path
from supalite.pg import logs as pg_logs
from supalite.pg import service
from supalite.pg.service import PgError

_MAX_BODY = 4 * 1024 * 1024


def _error(e: PgError) -> Response:
    return JSONResponse(e.body(), status_code=e.status)


def _authorize(request: Request) -> Response | None:
    """None when the caller holds the service_role key (or the secret key), else the answer."""
    try:
        claims = request.app.state.gateway.authenticate(
            request.headers, request.query_params, require_apikey=False
        )
    except GatewayError as e:
        return JSONResponse(e.kong_body(), status_code=e.status, headers=e.headers)
    if claims.token is None:
        return JSONResponse(
            {"code": "401", "message": "No API key found in request"}, status_code=401
        )
    request.state.role = claims.role
    if claims.role != "service_role":
        return _error(
            PgError("42501", "the /pg admin API needs the service_role (or secret) key", 403)
        )
    return None


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > _MAX_BODY:
        raise PgError("54000", f"request body over {_MAX_BODY} bytes", 413)
    try:
        body = json.loads(raw or b"{}")
    except ValueError as e:
        raise PgError("22P02", f"request body is not JSON: {e}") from e
    if not isinstance(body, dict):
        raise PgError("22P02", "request body must be a JSON object")
    return body


@asynccontextmanager
async def _connect(request: Request, *, read_only: bool) -> AsyncIterator[asyncpg.Connection]:
    runtime = request.app.state.runtime
    url = runtime.admin_url
    if read_only:
        state = request.app.state
        password = service.read_only_password(runtime.keys.jwt_secret)
        if not getattr(state, "pg_read_only_ready", False):
            try:
                admin = await asyncpg.connect(url, timeout=30)
                try:
                    await service.ensure_read_only_login(admin, password)
                finally:
                    await admin.close()
            except (OSError, asyncpg.PostgresError, TimeoutError) as e:
                # E.g. a DATABASE_URL login without CREATEROLE: read-only SQL is then
                # unavailable rather than run as a role that could write.
                raise PgError("08006", f"cannot set up the read-only login: {e}", 503) from e
            state.pg_read_only_ready = True
        url = with_credentials(url, service.READ_ONLY_ROLE, password)
    try:
        conn = await asyncpg.connect(url, timeout=30, statement_cache_size=0)
    except (OSError, asyncpg.PostgresError, TimeoutError) as e:
        raise PgError("08006", f"cannot connect to the database: {e}", 503) from e
    try:
        yield conn
    finally:
        await conn.close()


def _int(body: dict[str, Any], key: str, default: int) -> int:
    v = body.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise PgError("22023", f"'{key}' must be a non-negative integer")
    return v


async def query(request: Request) -> Response:
    denied = _authorize(request)
    if denied is not None:
        return denied
    try:
        body = await _body(request)
        sql = body.get("query")
        if not isinstance(sql, str) or not sql.strip():
            raise PgError("22023", "'query' must be a non-empty string")
        params = body.get("parameters", [])
        if not isinstance(params, list):
            raise PgError("22023", "'parameters' must be a list")
        read_only = body.get("read_only", False)
        if not isinstance(read_only, bool):
            raise PgError("22023", "'read_only' must be true or false")
        max_rows = _int(body, "max_rows", 1000)
        max_bytes = _int(body, "max_bytes", 1024 * 1024)
        async with _connect(request, read_only=read_only) as conn:
            result = await service.run_statement(
                conn, sql, params, read_only=read_only, max_rows=max_rows, max_bytes=max_bytes
            )
    except PgError as e:
        return _error(e)
    return JSONResponse(result.as_json())


async def migrations(request: Request) -> Response:
    denied = _authorize(request)
    if denied is not None:
        return denied
    settings = request.app.state.runtime.settings
    try:
        if request.method == "GET":
            async with _connect(request, read_only=True) as conn:
                return JSONResponse(await service.list_migrations(conn))
        body = await _body(request)
        name, sql = body.get("name"), body.get("query")
        if not isinstance(name, str) or not isinstance(sql, str):
            raise PgError("22023", "'name' and 'query' must be strings")
        async with _connect(request, read_only=False) as conn:
            out = await service.apply_migration(conn, name, sql, settings.supabase_dir)
    except PgError as e:
        return _error(e)
    return JSONResponse(out, status_code=201)


async def logs(request: Request) -> Response:
    denied = _authorize(request)
    if denied is not None:
        return denied
    path = log_path(request.app.state.runtime.settings.data_dir)
    try:
        # The log can be tens of megabytes: read it off the event loop.
        out = await run_in_threadpool(pg_logs.query, path, request.query_params)
    except PgError as e:
        return _error(e)
    return JSONResponse(out)


routes = [
    Route("/query", query, methods=["POST"]),
    Route("/migrations", migrations, methods=["GET", "POST"]),
    Route("/logs", logs, methods=["GET"]),
]
