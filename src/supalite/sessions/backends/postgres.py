"""Sessions in PostgreSQL through asyncpg: any PostgreSQL ≥ 13, supalite's own included, over
the tables of the shipped migrations (`public.mcp_sessions`, `public.mcp_credentials`).

Every call is one statement or one transaction.  Times are the store's clock passed as a bind
parameter, so what is visible and what the sweep deletes agree with the other backends.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

import asyncpg

from supalite.sessions import errors, models
from supalite.sessions.codec import (
    JSON_COLUMNS,
    credentials_from,
    from_column,
    session_from,
    to_column,
)
from supalite.sessions.migrations import install_sql
from supalite.sessions.models import Session, SessionCredentials
from supalite.sessions.store import SessionStore

_SCHEMA = "public"  # where the shipped migrations put the tables
_IDENT = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_SESSION_COLS = (
    "session_id, user_id, server_id, server_name, server_url, transport_type, callback_url,"
    " created_at, updated_at, expires_at, status, headers::text as headers, auth_url"
)
_CRED_COLS = (
    "c.client_information::text as client_information, c.tokens::text as tokens,"
    " c.code_verifier, c.client_id, c.oauth_state::text as oauth_state"
)


def visible(now: str, t: str = "mcp_sessions") -> str:
    """The SQL twin of `models.is_visible`, with `now` a bind parameter."""
    return (
        f"(case when {t}.status = 'active'"
        f" then {t}.updated_at >= {now}::timestamptz - interval '30 days'"
        f" else {t}.expires_at is null or {t}.expires_at >= {now}::timestamptz end)"
    )


_DISCONNECTS = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    ConnectionError,
    OSError,
    asyncio.TimeoutError,
)


def _jsonb(column: str) -> str:
    """The cast a bind parameter of `column` needs (JSON columns are bound as text)."""
    return "::jsonb" if column in JSON_COLUMNS else ""


class _Connection(asyncpg.Connection):  # type: ignore[misc]
    """The store's statements leave nothing on the session (no SET, LISTEN, cursor or
    session-level lock outlives a call), so a connection goes back to the pool without
    asyncpg's reset statement — one round trip less per call (the MCP server looks its
    session up on every tool call)."""

    def get_reset_query(self) -> str:
        return ""


class PostgresStore(SessionStore):
    name = "postgres"

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = _SCHEMA,
        min_size: int = 1,
        max_size: int = 10,
        **kw: Any,
    ) -> None:
        """`schema`: where the tables are — `public` as the shipped migrations make them, or
        a private schema (supalite's own MCP server keeps its sessions in `supalite_mcp`)."""
        super().__init__(**kw)
        if not _IDENT.fullmatch(schema):
            raise errors.SessionStoreError(errors.CONFIG, f"bad schema name {schema!r}")
        self.dsn = dsn
        self.schema = schema
        self._s = f"{schema}.mcp_sessions"
        self._c = f"{schema}.mcp_credentials"
        self._sizes = (min_size, max_size)
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()

    # ------------------------------------------------------------------ plumbing

    async def _get_pool(self) -> asyncpg.Pool:
        async with self._pool_lock:
            if self._pool is None:
                try:
                    self._pool = await asyncpg.create_pool(
                        self.dsn,
                        min_size=self._sizes[0],
                        max_size=self._sizes[1],
                        connection_class=_Connection,
                    )
                except _DISCONNECTS as e:
                    raise errors.unavailable("postgres", e) from e
                except asyncpg.PostgresError as e:
                    raise errors.unavailable("postgres", e) from e
            return self._pool

    @contextlib.asynccontextmanager
    async def _conn(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; failures become `SessionStoreError`s with a code."""
        pool = await self._get_pool()
        try:
            async with pool.acquire() as conn:
                yield conn
        except errors.SessionStoreError:
            raise
        except asyncpg.UndefinedTableError as e:
            raise errors.SessionStoreError(
                errors.CONFIG,
                f"{e}: the session tables are missing; run `supalite sessions init` and"
                " `supalite db push` (or PostgresStore.install_schema())",
            ) from e
        except _DISCONNECTS as e:
            raise errors.unavailable("postgres", e) from e
        except asyncpg.PostgresError as e:
            raise errors.SessionStoreError(errors.BACKEND, f"postgres: {e}") from e

    def _open(self, session_id: str, column: str, stored: Any) -> Any:
        return self.open_field(session_id, column, from_column(session_id, column, stored))

    def _session(self, row: Mapping[str, Any]) -> Session:
        return session_from(row, self._open, lambda t: t)

    # ------------------------------------------------------------------ schema

    async def init(self) -> None:
        async with self._conn() as conn:
            await conn.execute(f"select 1 from {self._s} limit 0; select 1 from {self._c} limit 0")

    async def install_schema(self, *, if_missing: bool = False) -> None:
        """Create the tables, indexes and triggers (no RLS policies, no cron): for a plain
        PostgreSQL that is not a Supabase project.  `if_missing`: not when the tables are
        there already — the file's DDL would otherwise run at every start (and every DDL
        makes the Data API reload its schema cache)."""
        if if_missing:
            async with self._conn() as conn:
                found = await conn.fetchval(
                    "select to_regclass($1) is not null and to_regclass($2) is not null",
                    self._s,
                    self._c,
                )
            if found:
                return
        sql = install_sql()
        if self.schema != _SCHEMA:
            # The shipped file names its objects `public.…` (it is never edited, see
            # migrations/__init__.py), so the private copy is the same text re-qualified.
            sql = f"create schema if not exists {self.schema};\n" + sql.replace(
                f"{_SCHEMA}.", f"{self.schema}."
            )
        async with self._conn() as conn, conn.transaction():
            # Several processes may install at once; CREATE … IF NOT EXISTS alone can still
            # collide in the catalog.
            await conn.execute("select pg_advisory_xact_lock(hashtext('supalite.sessions'))")
            await conn.execute(sql)

    # ------------------------------------------------------------------ interface

    async def create(self, session: Session) -> Session:
        now = self.clock()
        row = models.new_session(session, now)
        values = self.seal_fields({"headers": row.headers})
        async with self._conn() as conn, conn.transaction():
            # An expired row with this id is gone for readers; make it gone for the insert.
            await conn.execute(
                f"delete from {self._s} where session_id = $1 and not {visible('$2')}",
                row.session_id,
                now,
            )
            try:
                await conn.execute(
                    f"insert into {self._s} (session_id, user_id, server_id, server_name,"
                    " server_url, transport_type, callback_url, created_at, updated_at,"
                    " expires_at, status,"
                    " headers, auth_url) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
                    " $12::jsonb, $13)",
                    row.session_id,
                    row.user_id,
                    row.server_id,
                    row.server_name,
                    row.server_url,
                    row.transport_type,
                    row.callback_url,
                    row.created_at,
                    row.updated_at,
                    row.expires_at,
                    row.status,
                    to_column("headers", values["headers"]),
                    row.auth_url,
                )
            except asyncpg.UniqueViolationError as e:
                raise errors.exists(row.session_id) from e
        return row

    async def update(self, user_id: str, session_id: str, changes: Mapping[str, Any]) -> None:
        models.check_keys(user_id, session_id)
        changes = self.seal_fields(models.check_update(changes))
        now = self.clock()
        params: list[Any] = [user_id, session_id, now]
        sets = []
        status = "status"  # the merged status decides the expiry
        for column in sorted(changes):  # names come from models.UPDATABLE only
            params.append(to_column(column, changes[column]))
            cast = _jsonb(column)
            sets.append(f"{column} = ${len(params)}{cast}")
            if column == "status":
                status = f"${len(params)}"
        sets.append("updated_at = $3")
        sets.append(
            f"expires_at = case when {status} = 'active' then null"
            " else $3::timestamptz + interval '10 minutes' end"
        )
        async with self._conn() as conn:
            done = await conn.fetchval(
                f"update {self._s} set {', '.join(sets)} where user_id = $1 and session_id = $2"
                f" and {visible('$3')} returning 1",
                *params,
            )
        if done is None:
            raise errors.not_found(user_id, session_id)

    async def patch_credentials(
        self, user_id: str, session_id: str, changes: Mapping[str, Any]
    ) -> None:
        models.check_keys(user_id, session_id)
        changes = self.seal_fields(models.check_credentials(changes))
        if not changes:
            return
        now = self.clock()
        cols = sorted(changes)
        params = [user_id, session_id, now, *(to_column(c, changes[c]) for c in cols)]
        placeholders = [f"${i + 4}{_jsonb(c)}" for i, c in enumerate(cols)]
        updates = ", ".join(f"{c} = excluded.{c}" for c in cols)
        sql = (
            f"insert into {self._c} (user_id, session_id, updated_at, {', '.join(cols)})"
            f" select $1, $2, $3, {', '.join(placeholders)} where exists (select 1 from {self._s}"
            f" where user_id = $1 and session_id = $2 and {visible('$3')})"
            f" on conflict (user_id, session_id) do update set updated_at = $3, {updates}"
            " returning 1"
        )
        async with self._conn() as conn:
            try:
                done = await conn.fetchval(sql, *params)
            except asyncpg.ForeignKeyViolationError:
                done = None  # deleted between the check and the insert
        if done is None:
            raise errors.not_found(user_id, session_id)

    async def get(self, user_id: str, session_id: str) -> Session | None:
        async with self._conn() as conn:
            row = await conn.fetchrow(
                f"select {_SESSION_COLS} from {self._s} where user_id = $1 and session_id = $2"
                f" and {visible('$3')}",
                user_id,
                session_id,
                self.clock(),
            )
        return self._session(row) if row else None

    async def get_credentials(self, user_id: str, session_id: str) -> SessionCredentials | None:
        async with self._conn() as conn:
            row = await conn.fetchrow(
                f"select c.session_id is not null as has, {_CRED_COLS} from {self._s} s"
                f" left join {self._c} c using (user_id, session_id)"
                f" where s.user_id = $1 and s.session_id = $2 and {visible('$3', 's')}",
                user_id,
                session_id,
                self.clock(),
            )
        if row is None:
            return None
        return credentials_from(user_id, session_id, row if row["has"] else None, self._open)

    async def clear_credentials(self, user_id: str, session_id: str) -> None:
        async with self._conn() as conn:
            await conn.execute(
                f"delete from {self._c} where user_id = $1 and session_id = $2", user_id, session_id
            )

    async def list(self, user_id: str) -> list[Session]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                f"select {_SESSION_COLS} from {self._s} where user_id = $1 and {visible('$2')}"
                " order by created_at, session_id",
                user_id,
                self.clock(),
            )
        return [self._session(r) for r in rows]

    async def delete(self, user_id: str, session_id: str) -> None:
        async with self._conn() as conn:
            await conn.execute(
                f"delete from {self._s} where user_id = $1 and session_id = $2", user_id, session_id
            )

    async def list_ids(self, user_id: str) -> builtins.list[str]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                f"select session_id from {self._s} where user_id = $1 and {visible('$2')}"
                " order by created_at, session_id",
                user_id,
                self.clock(),
            )
        return [r[0] for r in rows]

    async def list_all_ids(self) -> builtins.list[str]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                f"select session_id from {self._s} where {visible('$1')} order by created_at,"
                " session_id",
                self.clock(),
            )
        return [r[0] for r in rows]

    async def clear_all(self) -> None:
        async with self._conn() as conn, conn.transaction():
            await conn.execute(f"delete from {self._c}")
            await conn.execute(f"delete from {self._s}")

    async def cleanup_expired(self) -> int:
        async with self._conn() as conn:
            rows = await conn.fetch(
                f"delete from {self._s} where not {visible('$1')} returning 1", self.clock()
            )
        return len(rows)

    async def reencrypt(self) -> int:
        """One transaction over both tables: every encrypted column ends with the current key
        or nothing is rewritten."""
        count = 0
        async with self._conn() as conn, conn.transaction():
            for table, cols in (
                (self._s, ("headers",)),
                (self._c, ("client_information", "tokens", "code_verifier")),
            ):
                select = ", ".join(f"{c}::text as {c}" if c in JSON_COLUMNS else c for c in cols)
                rows = await conn.fetch(
                    f"select user_id, session_id, {select} from {table} for update"
                )
                for r in rows:
                    sid = r["session_id"]
                    stale = {}
                    for c in cols:
                        stored = from_column(sid, c, r[c])
                        if not self.cipher.is_current(stored):
                            stale[c] = self.cipher.seal(self.open_field(sid, c, stored))
                    if not stale:
                        continue
                    names = sorted(stale)
                    sets = ", ".join(f"{c} = ${i + 3}{_jsonb(c)}" for i, c in enumerate(names))
                    await conn.execute(
                        f"update {table} set {sets} where user_id = $1 and session_id = $2",
                        r["user_id"],
                        sid,
                        *(to_column(c, stale[c]) for c in names),
                    )
                    count += len(stale)
        return count

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
