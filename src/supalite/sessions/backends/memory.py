"""Sessions in this process's memory: for tests and single-process development.  Nothing is
encrypted (nothing is at rest) and nothing survives a restart."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from supalite.sessions import errors, models
from supalite.sessions.models import Session, SessionCredentials
from supalite.sessions.store import SessionStore


class MemoryStore(SessionStore):
    name = "memory"

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._sessions: dict[str, Session] = {}
        self._credentials: dict[str, SessionCredentials] = {}
        self._lock = asyncio.Lock()

    def _visible(self, user_id: str, session_id: str) -> Session | None:
        s = self._sessions.get(session_id)
        if s is None or s.user_id != user_id:
            return None
        if not models.is_visible(s.status, s.expires_at, s.updated_at, self.clock()):
            return None
        return s

    def _drop_if_expired(self, session_id: str) -> None:
        s = self._sessions.get(session_id)
        if s and not models.is_visible(s.status, s.expires_at, s.updated_at, self.clock()):
            self._sessions.pop(session_id, None)
            self._credentials.pop(session_id, None)

    async def create(self, session: Session) -> Session:
        row = models.new_session(session, self.clock())
        async with self._lock:
            self._drop_if_expired(row.session_id)
            if row.session_id in self._sessions:
                raise errors.exists(row.session_id)
            self._sessions[row.session_id] = row
        return replace(row)

    async def update(self, user_id: str, session_id: str, changes: Mapping[str, Any]) -> None:
        changes = models.check_update(changes)
        async with self._lock:
            current = self._visible(user_id, session_id)
            if current is None:
                raise errors.not_found(user_id, session_id)
            self._sessions[session_id] = models.merge_update(current, changes, self.clock())

    async def patch_credentials(
        self, user_id: str, session_id: str, changes: Mapping[str, Any]
    ) -> None:
        changes = models.check_credentials(changes)
        async with self._lock:
            if self._visible(user_id, session_id) is None:
                raise errors.not_found(user_id, session_id)
            current = self._credentials.get(session_id) or SessionCredentials(session_id, user_id)
            self._credentials[session_id] = replace(current, **changes)

    async def get(self, user_id: str, session_id: str) -> Session | None:
        s = self._visible(user_id, session_id)
        return replace(s) if s else None

    async def get_credentials(self, user_id: str, session_id: str) -> SessionCredentials | None:
        if self._visible(user_id, session_id) is None:
            return None
        c = self._credentials.get(session_id)
        return replace(c) if c else SessionCredentials(session_id, user_id)

    async def clear_credentials(self, user_id: str, session_id: str) -> None:
        if self._visible(user_id, session_id) is not None:
            self._credentials.pop(session_id, None)

    async def list(self, user_id: str) -> list[Session]:
        return [
            replace(s)
            for sid, s in self._sessions.items()
            if s.user_id == user_id and self._visible(user_id, sid)
        ]

    async def delete(self, user_id: str, session_id: str) -> None:
        async with self._lock:
            s = self._sessions.get(session_id)
            if s is not None and s.user_id == user_id:
                del self._sessions[session_id]
                self._credentials.pop(session_id, None)

    async def list_ids(self, user_id: str) -> builtins.list[str]:
        return [s.session_id for s in await self.list(user_id)]

    async def list_all_ids(self) -> builtins.list[str]:
        return [sid for sid, s in self._sessions.items() if self._visible(s.user_id, sid)]

    async def clear_all(self) -> None:
        async with self._lock:
            self._sessions.clear()
            self._credentials.clear()

    async def cleanup_expired(self) -> int:
        async with self._lock:
            gone = [sid for sid, s in self._sessions.items() if not self._visible(s.user_id, sid)]
            for sid in gone:
                self._drop_if_expired(sid)
        return len(gone)
