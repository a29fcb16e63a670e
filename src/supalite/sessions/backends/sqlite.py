"""Sessions in a SQLite file (stdlib `sqlite3`, run on a worker thread): one column per field,
times in epoch milliseconds, JSON as text.  Several processes may share the file: every write
is one `BEGIN IMMEDIATE` transaction, and WAL mode lets readers run beside a writer.
"""

from __future__ import annotations

import asyncio
import builtins
import sqlite3
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from supalite.sessions import errors, models
from supalite.sessions.codec import (
    credentials_from,
    from_column,
    session_from,
    to_column,
)
from supalite.sessions.models import Session, SessionCredentials, to_millis
from supalite.sessions.store import SessionStore

T = TypeVar("T")

_SCHEMA = """
create table if not exists mcp_sessions (
  session_id text primary key, user_id text not null, server_id text, server_name text,
  server_url text not null, transport_type text not null, callback_url text not null,
  created_at integer not null, updated_at integer not null, expires_at integer,
  status text not null default 'pending', headers text, auth_url text,
  unique (user_id, session_id));
create index if not exists mcp_sessions_user on mcp_sessions (user_id);
create table if not exists mcp_credentials (
  session_id text not null, user_id text not null, client_information text, tokens text,
  code_verifier text, client_id text, oauth_state text, updated_at integer,
  primary key (user_id, session_id),
  foreign key (user_id, session_id) references mcp_sessions (user_id, session_id)
    on delete cascade);
"""
_SESSION_COLS = (
    "session_id, user_id, server_id, server_name, server_url, transport_type, callback_url,"
    " created_at, updated_at, expires_at, status, headers, auth_url"
)


def _visible(t: str = "mcp_sessions") -> str:
    return (
        f"(case when {t}.status = 'active' then {t}.updated_at >= :now - 2592000000"
        f" else {t}.expires_at is null or {t}.expires_at >= :now end)"
    )


_VISIBLE = _visible()


class SqliteStore(SessionStore):
    name = "sqlite"

    def __init__(self, path: str | Path = "./sessions.db", **kw: Any) -> None:
        super().__init__(**kw)
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ plumbing

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            try:
                db = sqlite3.connect(
                    self.path, isolation_level=None, check_same_thread=False, timeout=30
                )
                db.row_factory = sqlite3.Row
                db.execute("pragma journal_mode = wal")
                db.execute("pragma foreign_keys = on")
                db.executescript(_SCHEMA)
            except sqlite3.Error as e:
                raise errors.unavailable("sqlite", f"{self.path}: {e}") from e
            self._db = db
        return self._db

    async def _run(self, fn: Callable[[sqlite3.Connection], T], write: bool = False) -> T:
        def call() -> T:
            with self._lock:
                db = self._connect()
                try:
                    if not write:
                        return fn(db)
                    db.execute("begin immediate")
                    try:
                        out = fn(db)
                    except BaseException:
                        db.execute("rollback")
                        raise
                    db.execute("commit")
                    return out
                except errors.SessionStoreError:
                    raise
                except sqlite3.OperationalError as e:
                    if any(w in str(e) for w in ("locked", "unable to open", "disk", "readonly")):
                        raise errors.unavailable("sqlite", f"{self.path}: {e}") from e
                    raise errors.SessionStoreError(errors.BACKEND, f"sqlite: {e}") from e
                except sqlite3.Error as e:
                    raise errors.SessionStoreError(errors.BACKEND, f"sqlite: {e}") from e

        return await asyncio.to_thread(call)

    def _open(self, session_id: str, column: str, stored: Any) -> Any:
        return self.open_field(session_id, column, from_column(session_id, column, stored))

    def _session(self, row: Mapping[str, Any]) -> Session:
        return session_from(row, self._open, models.from_millis)

    # ------------------------------------------------------------------ interface

    async def init(self) -> None:
        await self._run(lambda db: None)

    async def create(self, session: Session) -> Session:
        now = self.clock()
        row = models.new_session(session, now)
        headers = to_column("headers", self.cipher.seal(row.headers))

        def go(db: sqlite3.Connection) -> None:
            db.execute(
                f"delete from mcp_sessions where session_id = :sid and not {_VISIBLE}",
                {"sid": row.session_id, "now": to_millis(now)},
            )
            try:
                db.execute(
                    f"insert into mcp_sessions ({_SESSION_COLS}) values"
                    " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        row.session_id,
                        row.user_id,
                        row.server_id,
                        row.server_name,
                        row.server_url,
                        row.transport_type,
                        row.callback_url,
                        to_millis(row.created_at),
                        to_millis(row.updated_at),
                        to_millis(row.expires_at),
                        row.status,
                        headers,
                        row.auth_url,
                    ),
                )
            except sqlite3.IntegrityError as e:
                raise errors.exists(row.session_id) from e

        await self._run(go, write=True)
        return row

    async def update(self, user_id: str, session_id: str, changes: Mapping[str, Any]) -> None:
        models.check_keys(user_id, session_id)
        changes = self.seal_fields(models.check_update(changes))
        params: dict[str, Any] = {"uid": user_id, "sid": session_id, "now": to_millis(self.clock())}
        sets = []
        for column in sorted(changes):  # names come from models.UPDATABLE only
            params[f"v_{column}"] = to_column(column, changes[column])
            sets.append(f"{column} = :v_{column}")
        status = ":v_status" if "status" in changes else "status"
        sets.append("updated_at = :now")
        sets.append(f"expires_at = case when {status} = 'active' then null else :now + 600000 end")
        sql = (
            f"update mcp_sessions set {', '.join(sets)} where user_id = :uid"
            f" and session_id = :sid and {_VISIBLE}"
        )
        count = await self._run(lambda db: db.execute(sql, params).rowcount, write=True)
        if count == 0:
            raise errors.not_found(user_id, session_id)

    async def patch_credentials(
        self, user_id: str, session_id: str, changes: Mapping[str, Any]
    ) -> None:
        models.check_keys(user_id, session_id)
        changes = self.seal_fields(models.check_credentials(changes))
        if not changes:
            return
        cols = sorted(changes)
        params = {
            "uid": user_id,
            "sid": session_id,
            "now": to_millis(self.clock()),
            **{f"v_{c}": to_column(c, changes[c]) for c in cols},
        }
        sql = (
            f"insert into mcp_credentials (user_id, session_id, updated_at, {', '.join(cols)})"
            f" select :uid, :sid, :now, {', '.join(':v_' + c for c in cols)}"
            f" where exists (select 1 from mcp_sessions where user_id = :uid"
            f" and session_id = :sid and {_VISIBLE})"
            " on conflict (user_id, session_id) do update set updated_at = :now, "
            + ", ".join(f"{c} = excluded.{c}" for c in cols)
        )
        count = await self._run(lambda db: db.execute(sql, params).rowcount, write=True)
        if count == 0:
            raise errors.not_found(user_id, session_id)

    async def get(self, user_id: str, session_id: str) -> Session | None:
        sql = (
            f"select {_SESSION_COLS} from mcp_sessions where user_id = :uid"
            f" and session_id = :sid and {_VISIBLE}"
        )
        params = {"uid": user_id, "sid": session_id, "now": to_millis(self.clock())}
        row = await self._run(lambda db: db.execute(sql, params).fetchone())
        return self._session(row) if row else None

    async def get_credentials(self, user_id: str, session_id: str) -> SessionCredentials | None:
        sql = (
            "select c.session_id as has, c.client_information, c.tokens, c.code_verifier,"
            " c.client_id, c.oauth_state from mcp_sessions s left join mcp_credentials c"
            " on c.user_id = s.user_id and c.session_id = s.session_id"
            f" where s.user_id = :uid and s.session_id = :sid and {_visible('s')}"
        )
        params = {"uid": user_id, "sid": session_id, "now": to_millis(self.clock())}
        row = await self._run(lambda db: db.execute(sql, params).fetchone())
        if row is None:
            return None
        if row["has"] is None:
            return SessionCredentials(session_id, user_id)
        return credentials_from(user_id, session_id, dict(row), self._open)

    async def clear_credentials(self, user_id: str, session_id: str) -> None:
        await self._run(
            lambda db: db.execute(
                "delete from mcp_credentials where user_id = ? and session_id = ?",
                (user_id, session_id),
            ),
            write=True,
        )

    async def list(self, user_id: str) -> list[Session]:
        sql = (
            f"select {_SESSION_COLS} from mcp_sessions where user_id = :uid and {_VISIBLE}"
            " order by created_at, session_id"
        )
        params = {"uid": user_id, "now": to_millis(self.clock())}
        rows = await self._run(lambda db: db.execute(sql, params).fetchall())
        return [self._session(r) for r in rows]

    async def delete(self, user_id: str, session_id: str) -> None:
        await self._run(
            lambda db: db.execute(
                "delete from mcp_sessions where user_id = ? and session_id = ?",
                (user_id, session_id),
            ),
            write=True,
        )

    async def list_ids(self, user_id: str) -> builtins.list[str]:
        sql = (
            f"select session_id from mcp_sessions where user_id = :uid and {_VISIBLE}"
            " order by created_at, session_id"
        )
        params = {"uid": user_id, "now": to_millis(self.clock())}
        rows = await self._run(lambda db: db.execute(sql, params).fetchall())
        return [r[0] for r in rows]

    async def list_all_ids(self) -> builtins.list[str]:
        sql = (
            f"select session_id from mcp_sessions where {_VISIBLE} order by created_at, session_id"
        )
        params = {"now": to_millis(self.clock())}
        rows = await self._run(lambda db: db.execute(sql, params).fetchall())
        return [r[0] for r in rows]

    async def clear_all(self) -> None:
        def go(db: sqlite3.Connection) -> None:
            db.execute("delete from mcp_credentials")
            db.execute("delete from mcp_sessions")

        await self._run(go, write=True)

    async def cleanup_expired(self) -> int:
        sql = f"delete from mcp_sessions where not {_VISIBLE}"
        params = {"now": to_millis(self.clock())}
        return await self._run(lambda db: db.execute(sql, params).rowcount, write=True)

    async def reencrypt(self) -> int:
        def go(db: sqlite3.Connection) -> int:
            count = 0
            for table, cols in (
                ("mcp_sessions", ("headers",)),
                ("mcp_credentials", ("client_information", "tokens", "code_verifier")),
            ):
                rows = db.execute(f"select user_id, session_id, {', '.join(cols)} from {table}")
                for r in rows.fetchall():
                    sid = r["session_id"]
                    for c in cols:
                        stored = from_column(sid, c, r[c])
                        if self.cipher.is_current(stored):
                            continue
                        value = self.cipher.seal(self.open_field(sid, c, stored))
                        db.execute(
                            f"update {table} set {c} = ? where user_id = ? and session_id = ?",
                            (to_column(c, value), r["user_id"], sid),
                        )
                        count += 1
            return count

        return await self._run(go, write=True)

    async def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
