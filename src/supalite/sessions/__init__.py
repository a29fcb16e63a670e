"""The MCP session store: the sessions and OAuth credentials of an app's connections to remote
MCP servers, kept in memory, a file, SQLite, PostgreSQL, Supabase or Redis (see docs/sessions.md).

`sessions` is a store that picks its backend from the environment on first use
(`selection.open_store`); build a backend class directly to choose in code.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Mapping
from typing import Any

from supalite.sessions.errors import SessionStoreError
from supalite.sessions.models import Session, SessionCredentials
from supalite.sessions.selection import open_store
from supalite.sessions.store import SessionStore

__all__ = [
    "EnvSessionStore",
    "Session",
    "SessionCredentials",
    "SessionStore",
    "SessionStoreError",
    "open_store",
    "sessions",
]


class EnvSessionStore(SessionStore):
    """Delegates to the backend the environment names, opened on the first call; a failed
    opening is raised to that caller and retried by the next."""

    name = "env"

    def __init__(self) -> None:
        super().__init__()
        self._store: SessionStore | None = None
        self._lock = asyncio.Lock()

    async def backend(self) -> SessionStore:
        async with self._lock:
            if self._store is None:
                self._store = await open_store()
            return self._store

    async def init(self) -> None:
        await self.backend()

    async def create(self, session: Session) -> Session:
        return await (await self.backend()).create(session)

    async def update(self, user_id: str, session_id: str, changes: Mapping[str, Any]) -> None:
        await (await self.backend()).update(user_id, session_id, changes)

    async def patch_credentials(
        self, user_id: str, session_id: str, changes: Mapping[str, Any]
    ) -> None:
        await (await self.backend()).patch_credentials(user_id, session_id, changes)

    async def get(self, user_id: str, session_id: str) -> Session | None:
        return await (await self.backend()).get(user_id, session_id)

    async def get_credentials(self, user_id: str, session_id: str) -> SessionCredentials | None:
        return await (await self.backend()).get_credentials(user_id, session_id)

    async def clear_credentials(self, user_id: str, session_id: str) -> None:
        await (await self.backend()).clear_credentials(user_id, session_id)

    async def list(self, user_id: str) -> list[Session]:
        return await (await self.backend()).list(user_id)

    async def delete(self, user_id: str, session_id: str) -> None:
        await (await self.backend()).delete(user_id, session_id)

    async def list_ids(self, user_id: str) -> builtins.list[str]:
        return await (await self.backend()).list_ids(user_id)

    async def list_all_ids(self) -> builtins.list[str]:
        return await (await self.backend()).list_all_ids()

    async def clear_all(self) -> None:
        await (await self.backend()).clear_all()

    async def cleanup_expired(self) -> int:
        return await (await self.backend()).cleanup_expired()

    async def reencrypt(self) -> int:
        return await (await self.backend()).reencrypt()

    async def close(self) -> None:
        async with self._lock:
            if self._store is not None:
                store, self._store = self._store, None
                await store.close()


sessions = EnvSessionStore()
