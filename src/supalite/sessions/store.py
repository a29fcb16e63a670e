"""The `SessionStore` interface every backend implements (mcp-ts's `SessionStore`, snake_case).

Concurrency: last write wins *per field*.  `update` and `patch_credentials` write only the
fields they are given, each in one atomic step of the backend, so two processes changing
different fields of one session both keep their change, and two changing the same field leave
one of the two values whole.  There is no conflict error and no read-modify-write of a whole
record anywhere.
"""

from __future__ import annotations

import abc
import builtins
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from supalite.sessions import models
from supalite.sessions.crypto import Cipher
from supalite.sessions.models import Session, SessionCredentials

Clock = Callable[[], datetime]


class SessionStore(abc.ABC):
    name = "abstract"

    def __init__(self, cipher: Cipher | None = None, clock: Clock = models.utcnow) -> None:
        self.cipher = cipher or Cipher()
        # Injected so tests can move time; SQL backends pass it as a bind parameter.
        self.clock = clock

    def generate_session_id(self) -> str:
        return models.generate_session_id()

    async def init(self) -> None:
        """Check that the backend is reachable and its tables exist; raise if not."""
        return None

    @abc.abstractmethod
    async def create(self, session: Session) -> Session:
        """Insert a new session (pending by default); `session_exists` if the id is taken."""

    @abc.abstractmethod
    async def update(self, user_id: str, session_id: str, changes: Mapping[str, Any]) -> None:
        """Change the given fields; `session_not_found` if there is no visible session."""

    @abc.abstractmethod
    async def patch_credentials(
        self, user_id: str, session_id: str, changes: Mapping[str, Any]
    ) -> None:
        """Set the given credential fields (None clears one); the session must exist."""

    @abc.abstractmethod
    async def get(self, user_id: str, session_id: str) -> Session | None: ...

    @abc.abstractmethod
    async def get_credentials(self, user_id: str, session_id: str) -> SessionCredentials | None:
        """The credentials (all None when none were stored); None if the session is gone."""

    @abc.abstractmethod
    async def clear_credentials(self, user_id: str, session_id: str) -> None: ...

    @abc.abstractmethod
    async def list(self, user_id: str) -> list[Session]: ...

    @abc.abstractmethod
    async def delete(self, user_id: str, session_id: str) -> None:
        """Remove the session and its credentials; silent if it does not exist."""

    @abc.abstractmethod
    async def list_ids(self, user_id: str) -> builtins.list[str]: ...

    @abc.abstractmethod
    async def list_all_ids(self) -> builtins.list[str]: ...

    @abc.abstractmethod
    async def clear_all(self) -> None: ...

    @abc.abstractmethod
    async def cleanup_expired(self) -> int:
        """Delete expired pending and dormant active sessions; return how many."""

    async def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        return None

    async def reencrypt(self) -> int:
        """Rewrite every encrypted field with the current key; return the values rewritten."""
        raise NotImplementedError(f"{self.name} storage keeps nothing encrypted")

    # ------------------------------------------------------------------ shared helpers

    def seal_fields(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return {k: self.cipher.seal(v) if k in models.ENCRYPTED else v for k, v in values.items()}

    def open_field(self, session_id: str, name: str, value: Any) -> Any:
        if name in models.ENCRYPTED:
            return self.cipher.open(value, f"session {session_id} {name}")
        return value
