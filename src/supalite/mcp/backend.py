"""The MCP server's view of a project: an HTTP client of its public APIs plus an admin SQL path.

The same code serves a local supalite and a Supabase project:

* data goes through `/rest/v1` with the project's keys, as an app's would;
* admin SQL goes to supalite's `/pg` endpoints (service_role only) or, when `DATABASE_URL` is
  given, straight to that database with asyncpg (the only way into a hosted Supabase project's
  SQL) — `SqlPath` is the one interface both implement.
"""

from __future__ import annotations

import asyncio
import copy
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import asyncpg
import httpx

from supalite.pg import service
from supalite.pg.service import PgError

# Data API codes for "not in the schema cache": a table, function, relationship or column.
_SCHEMA_CACHE_MISSES = frozenset({"PGRST205", "PGRST202", "PGRST200", "PGRST204"})
_SCHEMA_RETRIES = 4
# BackendError code: the admin path has no request log (a direct DATABASE_URL).
NO_REQUEST_LOG = "no_request_log"


@dataclass
class BackendError(Exception):
    """A service's answer that is not a success: its code and message, for the agent."""

    code: str
    message: str
    status: int = 0
    details: Any = None
    hint: str | None = None

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class BackendConfig:
    url: str
    service_key: str
    anon_key: str | None = None
    publishable_key: str | None = None
    database_url: str | None = None
    supabase_dir: Path | None = None  # where apply_migration writes files, when local

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BackendConfig | None:
        """The variables users of Supabase's clients and MCP servers already set."""
        env = os.environ if env is None else env
        url = env.get("SUPABASE_URL")
        key = env.get("SUPABASE_SERVICE_ROLE_KEY") or env.get("SUPABASE_SECRET_KEY")
        if not url or not key:
            return None
        return cls(
            url=url.rstrip("/"),
            service_key=key,
            anon_key=env.get("SUPABASE_ANON_KEY") or None,
            publishable_key=env.get("SUPABASE_PUBLISHABLE_KEY") or None,
            database_url=env.get("DATABASE_URL") or None,
        )


class SqlPath(Protocol):
    async def query(
        self, sql: str, parameters: list[Any], *, read_only: bool, max_rows: int, max_bytes: int
    ) -> dict[str, Any]: ...

    async def list_migrations(self) -> list[dict[str, Any]]: ...

    async def apply_migration(self, name: str, sql: str) -> dict[str, Any]: ...

    async def logs(self, params: Mapping[str, str | int]) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


def _pg_error(e: PgError) -> BackendError:
    return BackendError(e.code, e.message, e.status, e.detail, e.hint)


class DirectSql:
    """SQL over `DATABASE_URL`: a connection per call (the SQL is an agent's; nothing it sets
    may outlive the call).  Read-only runs use `BEGIN READ ONLY` and, on a Supabase project,
    switch to `supabase_read_only_user`, a role that cannot write."""

    def __init__(self, database_url: str, supabase_dir: Path | None) -> None:
        self.database_url = database_url
        self.supabase_dir = supabase_dir

    async def _connect(self) -> asyncpg.Connection:
        try:
            return await asyncpg.connect(self.database_url, timeout=30, statement_cache_size=0)
        except (OSError, asyncpg.PostgresError, TimeoutError) as e:
            raise BackendError("08006", f"cannot connect to DATABASE_URL: {e}") from e

    async def query(
        self, sql: str, parameters: list[Any], *, read_only: bool, max_rows: int, max_bytes: int
    ) -> dict[str, Any]:
        conn = await self._connect()
        try:
            role = await service.supabase_read_only_role(conn) if read_only else None
            result = await service.run_statement(
                conn,
                sql,
                parameters,
                read_only=read_only,
                max_rows=max_rows,
                max_bytes=max_bytes,
                switch_role=role,
            )
            return result.as_json()
        except PgError as e:
            raise _pg_error(e) from e
        finally:
            await conn.close()

    async def list_migrations(self) -> list[dict[str, Any]]:
        conn = await self._connect()
        try:
            return await service.list_migrations(conn)
        except PgError as e:
            raise _pg_error(e) from e
        finally:
            await conn.close()

    async def apply_migration(self, name: str, sql: str) -> dict[str, Any]:
        conn = await self._connect()
        try:
            return await service.apply_migration(conn, name, sql, self.supabase_dir)
        except PgError as e:
            raise _pg_error(e) from e
        finally:
            await conn.close()

    async def logs(self, params: Mapping[str, str | int]) -> dict[str, Any]:
        raise BackendError(
            NO_REQUEST_LOG,
            "logs are only available from a supalite server: a database reached by "
            "DATABASE_URL has no request log (on a Supabase project, use its dashboard's logs)",
        )

    async def aclose(self) -> None:
        return None


class Backend:
    """One project, and who is calling it.

    Made with the service key (service mode); `as_user` gives a view that shares the HTTP
    client and the SQL path but sends the anon key and a user's access token instead, so the
    project's gateway and RLS treat the agent exactly as that user."""

    def __init__(self, config: BackendConfig, transport: httpx.AsyncBaseTransport | None = None):
        self.config = config
        self.http = httpx.AsyncClient(
            base_url=config.url,
            transport=transport,
            timeout=httpx.Timeout(60.0, connect=10.0),
        )
        self.auth_headers: dict[str, str] = {
            "apikey": config.service_key,
            "Authorization": f"Bearer {config.service_key}",
        }
        self.user_mode = False
        self.sql: SqlPath = (
            DirectSql(config.database_url, config.supabase_dir)
            if config.database_url
            else _HttpSql(self.http, self.auth_headers)
        )

    @property
    def public_key(self) -> str | None:
        """The key an app would send as `apikey` (anon or publishable)."""
        return self.config.anon_key or self.config.publishable_key

    def as_user(self, access_token: str) -> Backend:
        """The same project reached as the user whose access token this is."""
        view = copy.copy(self)
        view.auth_headers = {
            "apikey": self.public_key or self.config.service_key,
            "Authorization": f"Bearer {access_token}",
        }
        view.user_mode = True
        return view

    def as_anon(self) -> Backend:
        """The project as an app without a signed-in user sees it (the anon role), e.g. for
        signing in; with no public key configured, the service key stands in as apikey."""
        key = self.public_key
        return self.as_user(key) if key else self

    async def aclose(self) -> None:
        await self.sql.aclose()
        await self.http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json_body: Any = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """One HTTP call to the project (`path` from the root, e.g. `/storage/v1/bucket`) as
        this view's caller; a network failure is a BackendError."""
        try:
            return await self.http.request(
                method,
                path,
                params=params,
                json=json_body,
                content=content,
                headers={**self.auth_headers, **(headers or {})},
                timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
            )
        except httpx.HTTPError as e:
            raise BackendError("network", f"cannot reach {self.config.url}: {e}") from e

    @asynccontextmanager
    async def stream(
        self, method: str, path: str, *, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[httpx.Response]:
        """`request` with the body left unread: the caller reads as much as it wants (e.g. a
        download capped at a size) and the rest is never fetched into memory."""
        try:
            async with self.http.stream(
                method, path, headers={**self.auth_headers, **(headers or {})}
            ) as r:
                yield r
        except httpx.HTTPError as e:
            raise BackendError("network", f"cannot reach {self.config.url}: {e}") from e

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json_body: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[Any, httpx.Headers]:
        """A call to any service that answers JSON (the body sent as JSON, or raw `content`):
        the decoded answer and the headers, or BackendError with the service's own code and
        message (PostgREST's, GoTrue's or Storage's shape)."""
        r = await self.request(
            method, path, params=params, json_body=json_body, content=content, headers=headers
        )
        try:
            data = r.json() if r.content else None
        except ValueError:
            data = r.text
        if r.status_code >= 400:
            raise service_error(r.status_code, data)
        return data, r.headers

    async def rest(
        self,
        method: str,
        path: str,
        *,
        params: list[tuple[str, str]] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[Any, httpx.Headers]:
        """A Data API call: the decoded JSON body and the headers, or BackendError with the
        Data API's own code and message."""
        for attempt in range(_SCHEMA_RETRIES + 1):
            try:
                return await self.call(
                    method,
                    "/rest/v1" + path,
                    params=params,
                    json_body=body,
                    headers={"Content-Type": "application/json", **(headers or {})},
                )
            except BackendError as e:
                # The Data API reloads its schema cache a moment after DDL: an agent that has
                # just created a table must not be told it does not exist.
                if e.code not in _SCHEMA_CACHE_MISSES or attempt == _SCHEMA_RETRIES:
                    raise
                await asyncio.sleep(0.25)
        raise AssertionError("unreachable")


def service_error(status: int, data: Any) -> BackendError:
    """A failed answer of any service as a BackendError: PostgREST's `code`/`message`,
    GoTrue's `error_code`/`msg`, Storage's `error`/`message` (with the real status as a
    string in `statusCode`)."""
    if isinstance(data, dict):
        code = data.get("code") or data.get("error_code") or data.get("error")
        message = data.get("message") or data.get("msg") or data.get("error_description") or data
        return BackendError(
            str(code or status),
            str(message),
            status,
            data.get("details"),
            data.get("hint"),
        )
    return BackendError(str(status), str(data)[:500], status)


class _HttpSql:
    """supalite's `/pg` endpoints (service_role only)."""

    def __init__(self, http: httpx.AsyncClient, auth_headers: Mapping[str, str]) -> None:
        self.http = http
        self.auth_headers = dict(auth_headers)  # always the service key's: /pg is admin only

    async def _call(
        self, method: str, path: str, body: Any = None, params: Mapping[str, Any] | None = None
    ) -> Any:
        try:
            r = await self.http.request(
                method, "/pg" + path, json=body, params=params, headers=self.auth_headers
            )
        except httpx.HTTPError as e:
            raise BackendError("network", f"cannot reach the admin SQL path: {e}") from e
        try:
            data = r.json()
        except ValueError:
            data = r.text
        if (r.status_code == 404 and not isinstance(data, dict)) or (
            isinstance(data, dict) and data.get("message") == "no Route matched with those values"
        ):
            raise BackendError(
                "no_admin_sql",
                "this project has no /pg admin SQL path (it is not supalite): set DATABASE_URL "
                "to the project's database to use the database tools",
                r.status_code,
            )
        if r.status_code >= 400:
            if isinstance(data, dict):
                return _raise(data, r.status_code)
            raise BackendError(str(r.status_code), str(data)[:500], r.status_code)
        return data

    async def query(
        self, sql: str, parameters: list[Any], *, read_only: bool, max_rows: int, max_bytes: int
    ) -> dict[str, Any]:
        body = {
            "query": sql,
            "parameters": parameters,
            "read_only": read_only,
            "max_rows": max_rows,
            "max_bytes": max_bytes,
        }
        data = await self._call("POST", "/query", body)
        if isinstance(data, list):  # postgres-meta's /query answers bare rows
            return {
                "columns": [],
                "rows": data,
                "row_count": len(data),
                "truncated": False,
                "command": "",
            }
        out: dict[str, Any] = data
        return out

    async def list_migrations(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = await self._call("GET", "/migrations")
        return data

    async def apply_migration(self, name: str, sql: str) -> dict[str, Any]:
        data: dict[str, Any] = await self._call("POST", "/migrations", {"name": name, "query": sql})
        return data

    async def logs(self, params: Mapping[str, str | int]) -> dict[str, Any]:
        """`GET /pg/logs`: supalite's request log, newest first."""
        data: dict[str, Any] = await self._call("GET", "/logs", params=params)
        return data

    async def aclose(self) -> None:
        return None


def _raise(data: dict[str, Any], status: int) -> Any:
    raise BackendError(
        str(data.get("code") or status),
        str(data.get("message") or data),
        status,
        data.get("detail"),
        data.get("hint"),
    )
