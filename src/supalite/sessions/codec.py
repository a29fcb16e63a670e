"""Rows to models and back, shared by the backends that store one column per field."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, cast

from supalite.sessions import errors, models
from supalite.sessions.models import Session, SessionCredentials

Opener = Callable[[str, str, Any], Any]  # (session_id, column, stored) -> value

# The columns stored as JSON text (jsonb in PostgreSQL) by the one-column-per-field backends.
JSON_COLUMNS = frozenset({"headers", "client_information", "tokens", "oauth_state"})


def to_column(column: str, value: Any) -> Any:
    """The value to bind for `column`: JSON columns go as JSON text."""
    return json.dumps(value) if column in JSON_COLUMNS and value is not None else value


def from_column(session_id: str, column: str, stored: Any) -> Any:
    """A stored column read back: JSON columns parsed (malformed text is `corrupt_data`)."""
    return load_json(session_id, column, stored) if column in JSON_COLUMNS else stored


def load_json(session_id: str, column: str, text: Any) -> Any:
    """A JSON column read as text; malformed text is a `corrupt_data` error naming the column."""
    if text is None or not isinstance(text, str | bytes):
        return text
    try:
        return json.loads(text)
    except ValueError as e:
        raise errors.corrupt(session_id, column, f"malformed JSON ({e})") from e


def _typed(session_id: str, column: str, value: Any, kind: type | tuple[type, ...]) -> Any:
    if value is not None and not isinstance(value, kind):
        raise errors.corrupt(session_id, column, f"expected {kind}, found {type(value).__name__}")
    return value


def session_from(
    row: Mapping[str, Any], open_: Opener, to_time: Callable[[Any], datetime | None]
) -> Session:
    sid = str(row["session_id"])
    headers = open_(sid, "headers", row["headers"])
    if headers is not None and not (
        isinstance(headers, dict) and all(isinstance(v, str) for v in headers.values())
    ):
        raise errors.corrupt(sid, "headers", "expected an object of strings")
    status = row["status"] or "pending"
    if status not in models.STATUSES:
        raise errors.corrupt(sid, "status", f"unknown status {status!r}")
    try:
        times = {k: to_time(row[k]) for k in ("created_at", "updated_at", "expires_at")}
    except (ValueError, TypeError, OverflowError) as e:
        raise errors.corrupt(sid, "created_at/updated_at/expires_at", str(e)) from e
    return Session(
        session_id=sid,
        user_id=str(row["user_id"]),
        server_url=row["server_url"],
        callback_url=row["callback_url"],
        transport_type=row["transport_type"],
        server_id=row["server_id"],
        server_name=row["server_name"],
        status=cast(models.Status, status),
        headers=headers,
        auth_url=row["auth_url"],
        **times,
    )


def credentials_from(
    user_id: str, session_id: str, row: Mapping[str, Any] | None, open_: Opener
) -> SessionCredentials:
    if row is None:
        return SessionCredentials(session_id, user_id)
    return SessionCredentials(
        session_id=session_id,
        user_id=user_id,
        client_information=_typed(
            session_id,
            "client_information",
            open_(session_id, "client_information", row["client_information"]),
            dict,
        ),
        tokens=_typed(session_id, "tokens", open_(session_id, "tokens", row["tokens"]), dict),
        code_verifier=_typed(
            session_id,
            "code_verifier",
            open_(session_id, "code_verifier", row["code_verifier"]),
            str,
        ),
        client_id=_typed(session_id, "client_id", row["client_id"], str),
        oauth_state=_typed(
            session_id, "oauth_state", open_(session_id, "oauth_state", row["oauth_state"]), dict
        ),
    )
