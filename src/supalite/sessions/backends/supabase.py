"""Sessions in a Supabase project (or supalite) through its Data API, `/rest/v1`, with the
service-role (secret) key, which bypasses the tables' RLS.  The same tables as the PostgreSQL
backend, so the two, and mcp-ts's Supabase backend, share rows.

A write is one request: `update` PATCHes only its fields, `patch_credentials` upserts only its
columns (PostgREST's merge-duplicates sets just the columns sent).  The sweep and the
visibility rules use the store's clock, as a filter value.
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from supalite.sessions import errors, models
from supalite.sessions.codec import credentials_from, session_from
from supalite.sessions.models import Session, SessionCredentials
from supalite.sessions.store import SessionStore

# How a missing table shows: PostgreSQL's code, or PostgREST's "not in the schema cache".
_MISSING_TABLE = ("42P01", "PGRST205")


def _ts(t: datetime) -> str:
    """UTC with a `Z`: no `+` to escape in a query string, nothing to quote in `or=(…)`."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _from_ts(v: Any) -> datetime | None:
    if v is None:
        return None
    return datetime.fromisoformat(str(v).replace("Z", "+00:00"))


class SupabaseStore(SessionStore):
    name = "supabase"

    def __init__(self, url: str, key: str, *, timeout: float = 30, **kw: Any) -> None:
        super().__init__(**kw)
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.url + "/rest/v1",
            headers={"apikey": key, "Authorization": f"Bearer {key}"},
            timeout=timeout,
        )

    # ------------------------------------------------------------------ plumbing

    def _filters(
        self,
        user_id: str | None = None,
        session_id: str | None = None,
        visible_at: datetime | None = None,
        negate: bool = False,
    ) -> dict[str, str]:
        params: dict[str, str] = {}
        if user_id is not None:
            params["user_id"] = f"eq.{user_id}"
        if session_id is not None:
            params["session_id"] = f"eq.{session_id}"
        if visible_at is not None:
            fresh = _ts(visible_at - models.DORMANT_AFTER)
            cond = (
                f"(and(status.eq.active,updated_at.gte.{fresh}),"
                f"and(status.neq.active,or(expires_at.is.null,expires_at.gte.{_ts(visible_at)})))"
            )
            params["not.or" if negate else "or"] = cond
        return params

    @contextlib.asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        try:
            yield
        except httpx.TransportError as e:
            raise errors.unavailable("supabase", f"{self.url}: {e!r}") from e

    async def _call(
        self,
        method: str,
        table: str,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        prefer: str | None = None,
    ) -> httpx.Response:
        headers = {"Prefer": prefer} if prefer else {}
        async with self._guard():
            r = await self._http.request(
                method, "/" + table, params=params, json=json, headers=headers
            )
        if r.status_code >= 400:
            body: dict[str, Any] = {}
            with contextlib.suppress(ValueError):
                body = r.json()
            code = str(body.get("code", "")) if isinstance(body, dict) else ""
            message = body.get("message", r.text) if isinstance(body, dict) else r.text
            if code in _MISSING_TABLE or (r.status_code == 404 and not code):
                raise errors.SessionStoreError(
                    errors.CONFIG,
                    f"Table {table!r} not found at {self.url}: run `supalite sessions init` and"
                    f" `supalite db push` ({code or r.status_code}: {message})",
                )
            if r.status_code in (502, 503, 504):
                raise errors.unavailable("supabase", f"{r.status_code}: {message}")
            raise errors.SessionStoreError(
                errors.BACKEND, f"supabase {method} {table}: {r.status_code} {code}: {message}"
            ) from _Http(code)
        return r

    def _open(self, session_id: str, column: str, stored: Any) -> Any:
        return self.open_field(session_id, column, stored)

    def _session(self, row: Mapping[str, Any]) -> Session:
        return session_from(row, self._open, _from_ts)

    def _visible(self, s: Session) -> bool:
        return models.is_visible(s.status, s.expires_at, s.updated_at, self.clock())

    # ------------------------------------------------------------------ interface

    async def init(self) -> None:
        for table in ("mcp_sessions", "mcp_credentials"):
            await self._call("GET", table, {"select": "session_id", "limit": "0"})

    async def create(self, session: Session) -> Session:
        now = self.clock()
        row = models.new_session(session, now)
        # An expired row with this id is gone for readers; make it gone for the insert.
        await self._call(
            "DELETE",
            "mcp_sessions",
            self._filters(session_id=row.session_id, visible_at=now, negate=True),
        )
        body = {
            "session_id": row.session_id,
            "user_id": row.user_id,
            "server_id": row.server_id,
            "server_name": row.server_name,
            "server_url": row.server_url,
            "transport_type": row.transport_type,
            "callback_url": row.callback_url,
            "created_at": _ts(row.created_at or now),
            "updated_at": _ts(now),
            "expires_at": _ts(row.expires_at) if row.expires_at else None,
            "status": row.status,
            "headers": self.cipher.seal(row.headers),
            "auth_url": row.auth_url,
        }
        try:
            await self._call("POST", "mcp_sessions", json=body, prefer="return=minimal")
        except errors.SessionStoreError as e:
            if isinstance(e.__cause__, _Http) and e.__cause__.code == "23505":
                raise errors.exists(row.session_id) from None
            raise
        return row

    async def update(self, user_id: str, session_id: str, changes: Mapping[str, Any]) -> None:
        models.check_keys(user_id, session_id)
        changes = models.check_update(changes)
        now = self.clock()
        status = changes.get("status")
        if status is None:
            current = await self.get(user_id, session_id)
            if current is None:
                raise errors.not_found(user_id, session_id)
            status = current.status
        expires = models.expires_for(status, now)
        body = {
            **self.seal_fields(changes),
            "updated_at": _ts(now),
            "expires_at": _ts(expires) if expires else None,
        }
        params = {**self._filters(user_id, session_id, visible_at=now), "select": "session_id"}
        r = await self._call("PATCH", "mcp_sessions", params, body, "return=representation")
        if not r.json():
            raise errors.not_found(user_id, session_id)

    async def patch_credentials(
        self, user_id: str, session_id: str, changes: Mapping[str, Any]
    ) -> None:
        models.check_keys(user_id, session_id)
        sealed = self.seal_fields(models.check_credentials(changes))
        if await self.get(user_id, session_id) is None:
            raise errors.not_found(user_id, session_id)
        if not sealed:
            return
        body = {
            "user_id": user_id,
            "session_id": session_id,
            "updated_at": _ts(self.clock()),
            **sealed,
        }
        try:
            await self._call(
                "POST",
                "mcp_credentials",
                {"on_conflict": "user_id,session_id"},
                body,
                "resolution=merge-duplicates,return=minimal",
            )
        except errors.SessionStoreError as e:
            if isinstance(e.__cause__, _Http) and e.__cause__.code == "23503":
                raise errors.not_found(user_id, session_id) from None
            raise

    async def get(self, user_id: str, session_id: str) -> Session | None:
        r = await self._call(
            "GET", "mcp_sessions", {**self._filters(user_id, session_id), "select": "*"}
        )
        rows = r.json()
        if not rows:
            return None
        s = self._session(rows[0])
        return s if self._visible(s) else None

    async def get_credentials(self, user_id: str, session_id: str) -> SessionCredentials | None:
        if await self.get(user_id, session_id) is None:
            return None
        r = await self._call(
            "GET", "mcp_credentials", {**self._filters(user_id, session_id), "select": "*"}
        )
        rows = r.json()
        return credentials_from(user_id, session_id, rows[0] if rows else None, self._open)

    async def clear_credentials(self, user_id: str, session_id: str) -> None:
        await self._call("DELETE", "mcp_credentials", self._filters(user_id, session_id))

    async def list(self, user_id: str) -> list[Session]:
        params = {
            **self._filters(user_id, visible_at=self.clock()),
            "select": "*",
            "order": "created_at,session_id",
        }
        r = await self._call("GET", "mcp_sessions", params)
        return [s for s in map(self._session, r.json()) if self._visible(s)]

    async def delete(self, user_id: str, session_id: str) -> None:
        await self._call("DELETE", "mcp_sessions", self._filters(user_id, session_id))

    async def list_ids(self, user_id: str) -> builtins.list[str]:
        return [s.session_id for s in await self.list(user_id)]

    async def list_all_ids(self) -> builtins.list[str]:
        params = {
            **self._filters(visible_at=self.clock()),
            "select": "session_id",
            "order": "created_at,session_id",
        }
        r = await self._call("GET", "mcp_sessions", params)
        return [row["session_id"] for row in r.json()]

    async def clear_all(self) -> None:
        await self._call("DELETE", "mcp_credentials", {"session_id": "neq."})
        await self._call("DELETE", "mcp_sessions", {"session_id": "neq."})

    async def cleanup_expired(self) -> int:
        params = {**self._filters(visible_at=self.clock(), negate=True), "select": "session_id"}
        r = await self._call("DELETE", "mcp_sessions", params, prefer="return=representation")
        return len(r.json())

    async def reencrypt(self) -> int:
        """Row by row (the Data API has no multi-request transaction); safe to re-run."""
        count = 0
        for table, cols in (
            ("mcp_sessions", ("headers",)),
            ("mcp_credentials", ("client_information", "tokens", "code_verifier")),
        ):
            r = await self._call("GET", table, {"select": "user_id,session_id," + ",".join(cols)})
            for row in r.json():
                sid = row["session_id"]
                stale = {
                    c: self.cipher.seal(self.open_field(sid, c, row[c]))
                    for c in cols
                    if not self.cipher.is_current(row[c])
                }
                if stale:
                    await self._call(
                        "PATCH", table, self._filters(row["user_id"], sid), stale, "return=minimal"
                    )
                    count += len(stale)
        return count

    async def close(self) -> None:
        await self._http.aclose()


class _Http(Exception):
    """The Data API's error code, carried as the cause of a `SessionStoreError`."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code
