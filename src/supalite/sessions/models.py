"""What a session and its credentials are, and the lifecycle rules every backend applies.

Field names follow mcp-ts's columns (snake_case), so a row written by either reads in the other.
Times are aware UTC datetimes; backends without a time type store epoch milliseconds.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from supalite.sessions import errors

Status = Literal["pending", "active"]
TransportType = Literal["sse", "streamable-http"]

# mcp-ts's constants: a pending session (OAuth in flight) lives 10 minutes from its last write;
# an active one is dormant after 30 days without a write.
PENDING_TTL = timedelta(minutes=10)
DORMANT_AFTER = timedelta(days=30)

STATUSES: tuple[str, ...] = ("pending", "active")
TRANSPORTS: tuple[str, ...] = ("sse", "streamable-http")

# What `update` may change; ids, created_at and the lifecycle columns are the store's.
UPDATABLE = frozenset(
    {
        "server_id",
        "server_name",
        "server_url",
        "transport_type",
        "callback_url",
        "headers",
        "auth_url",
        "status",
    }
)
CREDENTIAL_FIELDS = frozenset(
    {"client_information", "tokens", "code_verifier", "client_id", "oauth_state"}
)
# Encrypted at rest in every persistent backend (mcp-ts encrypts these four in Supabase/Neon).
ENCRYPTED = frozenset({"headers", "tokens", "client_information", "code_verifier"})

_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Session:
    session_id: str
    user_id: str
    server_url: str
    callback_url: str
    transport_type: TransportType = "streamable-http"
    server_id: str | None = None
    server_name: str | None = None
    status: Status = "pending"
    headers: dict[str, str] | None = None
    auth_url: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    expires_at: datetime | None = None


@dataclass
class SessionCredentials:
    session_id: str
    user_id: str
    client_information: dict[str, Any] | None = None
    tokens: dict[str, Any] | None = None
    code_verifier: str | None = None
    client_id: str | None = None
    oauth_state: dict[str, Any] | None = None


SESSION_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Session))
CREDENTIAL_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(SessionCredentials))


def generate_session_id() -> str:
    """`sess_` + 21 characters of nanoid's alphabet, as mcp-ts ≥ 2.5 makes them."""
    return "sess_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(21))


def expires_for(status: str, ref: datetime) -> datetime | None:
    return None if status == "active" else ref + PENDING_TTL


def is_visible(
    status: str, expires_at: datetime | None, updated_at: datetime | None, now: datetime
) -> bool:
    """False once a session is expired (pending) or dormant (active): mcp-ts keeps returning
    such rows until a sweep runs; here they are gone for readers at once."""
    if status == "active":
        return updated_at is None or updated_at >= now - DORMANT_AFTER
    return expires_at is None or expires_at >= now


def _check_id(name: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise errors.SessionStoreError(errors.INVALID_INPUT, f"{name} must be a non-empty string")


def check_keys(user_id: object, session_id: object) -> None:
    _check_id("user_id", user_id)
    _check_id("session_id", session_id)


def _check_field(name: str, value: Any) -> None:
    if name == "status" and value not in STATUSES:
        raise errors.SessionStoreError(errors.INVALID_INPUT, f"status must be one of {STATUSES}")
    if name == "transport_type" and value not in TRANSPORTS:
        raise errors.SessionStoreError(
            errors.INVALID_INPUT, f"transport_type must be one of {TRANSPORTS}"
        )
    if name in ("server_url", "callback_url"):
        _check_id(name, value)
    if (
        name == "headers"
        and value is not None
        and not (
            isinstance(value, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
        )
    ):
        raise errors.SessionStoreError(errors.INVALID_INPUT, "headers must be an object of strings")


def new_session(session: Session, now: datetime) -> Session:
    """The row `create` writes: pending unless told otherwise, expiry from now."""
    check_keys(session.user_id, session.session_id)
    for name in UPDATABLE:
        _check_field(name, getattr(session, name))
    return replace(
        session,
        created_at=session.created_at or now,
        updated_at=now,
        expires_at=expires_for(session.status, now),
    )


def check_update(changes: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise errors.SessionStoreError(
            errors.INVALID_INPUT, f"cannot update {sorted(unknown)}; allowed: {sorted(UPDATABLE)}"
        )
    for name, value in changes.items():
        _check_field(name, value)
    return dict(changes)


def check_credentials(changes: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(changes) - CREDENTIAL_FIELDS
    if unknown:
        raise errors.SessionStoreError(
            errors.INVALID_INPUT,
            f"not credential fields: {sorted(unknown)}; allowed: {sorted(CREDENTIAL_FIELDS)}",
        )
    for name in ("client_information", "tokens", "oauth_state"):
        if name in changes and changes[name] is not None and not isinstance(changes[name], dict):
            raise errors.SessionStoreError(errors.INVALID_INPUT, f"{name} must be an object")
    for name in ("code_verifier", "client_id"):
        if name in changes and changes[name] is not None and not isinstance(changes[name], str):
            raise errors.SessionStoreError(errors.INVALID_INPUT, f"{name} must be a string")
    return dict(changes)


def merge_update(current: Session, changes: Mapping[str, Any], now: datetime) -> Session:
    """`update` in memory: the given fields, a fresh updated_at, expiry from the merged status
    (so every write to a pending session gives it another 10 minutes)."""
    merged = replace(current, **changes)
    return replace(merged, updated_at=now, expires_at=expires_for(merged.status, now))


def to_millis(t: datetime | None) -> int | None:
    return None if t is None else int(t.timestamp() * 1000)


def from_millis(v: object) -> datetime | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"expected epoch milliseconds, got {type(v).__name__}")
    return datetime.fromtimestamp(v / 1000, UTC)
