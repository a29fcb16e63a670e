"""Who an MCP session acts as: the service role, or a user signed in through the auth tools.

A user's tokens are kept in the MCP session store (`supalite.sessions`), keyed by the MCP
session's id under one owner, `supalite-mcp` — not in this process's memory — so any
process serving the session (several workers behind `/mcp`, or a restarted one) finds them.
They are refreshed shortly before they expire, and the refreshed pair is written back.

The session id is the MCP session's: over HTTP the `Mcp-Session-Id` header (which `/mcp`
issues on the first answer and the client echoes), over stdio one id per process.  Anyone
holding a session id holds the session, as with any session cookie, so ids are 128 random
bits and never logged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from supalite.keys import derive
from supalite.mcp.backend import Backend, BackendError
from supalite.sessions import selection
from supalite.sessions.backends.memory import MemoryStore
from supalite.sessions.backends.postgres import PostgresStore
from supalite.sessions.crypto import Cipher
from supalite.sessions.models import Session
from supalite.sessions.store import SessionStore

log = logging.getLogger("supalite.mcp")

OWNER = "supalite-mcp"  # the store's user_id for the MCP server's own sessions
SERVER_ID = "supalite-mcp"
# Refresh when less than this is left of the access token (or half its life, if shorter).
REFRESH_MARGIN_S = 60
_ENDED = "ended"  # stored in place of the tokens once Auth refused a refresh


@dataclass
class SignedIn:
    """A signed-in user's session, as the auth tools report it."""

    access_token: str
    refresh_token: str
    expires_at: int
    user: dict[str, Any]
    lifetime: int

    def as_tokens(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at,
            "expires_in": self.lifetime,
            "token_type": "bearer",
            "user": self.user,
        }

    @classmethod
    def from_tokens(cls, data: dict[str, Any]) -> SignedIn:
        """A GoTrue token answer (or what `as_tokens` stored) as a SignedIn."""
        lifetime = int(data.get("expires_in") or 3600)
        expires_at = int(data.get("expires_at") or time.time() + lifetime)
        return cls(
            access_token=str(data["access_token"]),
            refresh_token=str(data.get("refresh_token") or ""),
            expires_at=expires_at,
            user=dict(data.get("user") or {}),
            lifetime=lifetime,
        )

    def due(self, now: float) -> bool:
        margin = min(REFRESH_MARGIN_S, self.lifetime // 2)
        return bool(self.refresh_token) and self.expires_at - now <= margin


class SignInExpired(BackendError):
    """The session's user can no longer be acted for (Auth refused the refresh).  Tools fail
    until the agent signs in again or out: falling back to the session's starting identity
    could be the service role, which bypasses the RLS the agent signed in to be held to."""

    def __init__(self, user: dict[str, Any]) -> None:
        who = user.get("email") or user.get("id") or "the user"
        super().__init__(
            "session_expired",
            f"the sign-in of {who} has ended (Auth refused to refresh it): sign in again with "
            "an auth_sign_in tool, or auth_sign_out to return to how this session started",
        )


class Identities:
    """The signed-in users of this server's MCP sessions, in a session store."""

    def __init__(self, service: Backend, store: SessionStore, *, sole_reader: bool = False):
        """`sole_reader`: no other process serves these sessions (stdio), so what this one
        wrote is what the store holds and reads can be answered from memory; the store stays
        the record.  Behind `/mcp` any worker may serve a session, so every call reads it."""
        self.service = service
        self.store = store
        self.sole_reader = sole_reader
        self._known: dict[str, SignedIn | None] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def current(self, session_id: str) -> SignedIn | None:
        """The session's user, refreshed first when the access token is about to expire."""
        async with self._lock(session_id):
            signed = await self._load(session_id)
            if signed is None or not signed.due(time.time()):
                return signed
            try:
                data, _ = await self.service.as_anon().call(
                    "POST",
                    "/auth/v1/token",
                    params={"grant_type": "refresh_token"},
                    json_body={"refresh_token": signed.refresh_token},
                )
            except BackendError as e:
                if e.status in (400, 401, 403):  # revoked or reused: the user must sign in again
                    log.info("an MCP session's refresh token was refused: %s", e.code)
                    ended = {_ENDED: True, "user": signed.user}
                    await self.store.patch_credentials(OWNER, session_id, {"tokens": ended})
                    self._known.pop(session_id, None)
                    raise SignInExpired(signed.user) from e
                raise
            fresh = SignedIn.from_tokens(data)
            await self.store.patch_credentials(OWNER, session_id, {"tokens": fresh.as_tokens()})
            self._remember_locally(session_id, fresh)
            return fresh

    async def remember(self, session_id: str, signed: SignedIn) -> None:
        """Keep a new sign-in: the session record (active) and its tokens."""
        await self.store.delete(OWNER, session_id)  # a second sign-in replaces the first
        await self.store.create(
            Session(
                session_id=session_id,
                user_id=OWNER,
                server_id=SERVER_ID,
                server_name="supalite MCP server",
                server_url=self.service.config.url,
                # The record's OAuth fields have no use here (the user signed in with the auth
                # tools), but the model wants a URL: the project's.
                callback_url=self.service.config.url,
                status="active",
            )
        )
        await self.store.patch_credentials(OWNER, session_id, {"tokens": signed.as_tokens()})
        self._remember_locally(session_id, signed)

    async def forget(self, session_id: str) -> None:
        await self.store.delete(OWNER, session_id)
        self._remember_locally(session_id, None)

    async def peek(self, session_id: str) -> SignedIn | None:
        """The stored sign-in as it is, without refreshing it (SignInExpired once it ended)."""
        return await self._load(session_id)

    async def _load(self, session_id: str) -> SignedIn | None:
        if self.sole_reader and session_id in self._known:
            return self._known[session_id]
        creds = await self.store.get_credentials(OWNER, session_id)
        tokens = creds.tokens if creds else None
        if tokens and tokens.get(_ENDED):
            raise SignInExpired(tokens.get("user") or {})
        signed = SignedIn.from_tokens(tokens) if tokens else None
        self._remember_locally(session_id, signed)
        return signed

    def _remember_locally(self, session_id: str, signed: SignedIn | None) -> None:
        if self.sole_reader:
            self._known[session_id] = signed

    def _lock(self, session_id: str) -> asyncio.Lock:
        # One refresh at a time per session in this process (a refresh token is single use).
        lock = self._locks.get(session_id)
        if lock is None:
            if len(self._locks) > 10_000:
                self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            lock = self._locks[session_id] = asyncio.Lock()
        return lock


PRIVATE_SCHEMA = "supalite_mcp"


def project_store(admin_url: str, jwt_secret: str) -> PostgresStore:
    """A supalite project's own store for its MCP server: the session tables in a private
    schema of its database (not `public`, where `supalite sessions init` puts an app's),
    encrypted with a key derived from the project's JWT secret, so tokens are never kept in
    plain text and nothing needs configuring.  `install_schema()` before first use."""
    key = derive(jwt_secret, "supalite-mcp-sessions")
    return PostgresStore(
        admin_url, schema=PRIVATE_SCHEMA, cipher=Cipher(key), min_size=1, max_size=4
    )


async def open_stdio_store(local: tuple[str, str] | None) -> SessionStore:
    """The store `supalite mcp` keeps its session's sign-in in: the one the environment
    names (`MCP_TS_STORAGE_TYPE`), else the local supalite's own, else memory — a stdio
    session lives only as long as its process anyway."""
    if os.environ.get("MCP_TS_STORAGE_TYPE"):
        return await selection.open_store()
    if local is not None:  # (database URL, JWT secret) of the local supalite
        store = project_store(*local)
        await store.install_schema(if_missing=True)
        return store
    return MemoryStore()
