"""The user object as GoTrue renders it (`internal/models/user.go`), from a row of sql.USER_*."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

# Optional timestamps GoTrue leaves out of the JSON when they are unset (`omitempty`).
_OPTIONAL_TIMES = (
    "email_confirmed_at",
    "invited_at",
    "phone_confirmed_at",
    "confirmation_sent_at",
    "confirmed_at",
    "recovery_sent_at",
    "email_change_sent_at",
    "phone_change_sent_at",
    "reauthentication_sent_at",
    "last_sign_in_at",
    "banned_until",
    "deleted_at",
)


def iso(ts: datetime | None) -> str | None:
    """RFC 3339 in UTC with microseconds and a Z, as Go's time marshals."""
    if ts is None:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def jsonb(value: Any) -> Any:
    """asyncpg hands json/jsonb back as text."""
    if isinstance(value, str):
        return json.loads(value)
    return value if value is not None else {}


def identity_json(i: Mapping[str, Any]) -> dict[str, Any]:
    # GoTrue swaps the names: `identity_id` is the row's id, `id` the provider's.
    out = {
        "identity_id": str(i["id"]),
        "id": i["provider_id"],
        "user_id": str(i["user_id"]),
        "identity_data": i["identity_data"],
        "provider": i["provider"],
        "last_sign_in_at": _iso_text(i.get("last_sign_in_at")),
        "created_at": _iso_text(i.get("created_at")),
        "updated_at": _iso_text(i.get("updated_at")),
    }
    if i.get("email"):
        out["email"] = i["email"]
    return out


def factor_json(f: Mapping[str, Any]) -> dict[str, Any]:
    out = {
        "id": str(f["id"]),
        "status": f["status"],
        "factor_type": f["factor_type"],
        "created_at": _iso_text(f["created_at"]),
        "updated_at": _iso_text(f["updated_at"]),
        "last_challenged_at": _iso_text(f.get("last_challenged_at")),
        "phone": f.get("phone") or "",
    }
    if f.get("friendly_name"):
        out["friendly_name"] = f["friendly_name"]
    return out


def _iso_text(value: Any) -> str | None:
    """Timestamps inside json_agg arrive as Postgres text; normalise them to Go's format."""
    if value is None or isinstance(value, datetime):
        return iso(value)
    return iso(datetime.fromisoformat(str(value)))


def user_json(row: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(row["id"]),
        "aud": row["aud"] or "",
        "role": row["role"] or "",
        "email": row["email"] or "",
        "phone": row["phone"] or "",
        "app_metadata": jsonb(row["raw_app_meta_data"]),
        "user_metadata": jsonb(row["raw_user_meta_data"]),
        "identities": [identity_json(i) for i in jsonb(row["identities_json"])],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "is_anonymous": bool(row["is_anonymous"]),
    }
    out.update({name: iso(row[name]) for name in _OPTIONAL_TIMES if row[name] is not None})
    if row["email_change"]:
        out["new_email"] = row["email_change"]
    if row["phone_change"]:
        out["new_phone"] = row["phone_change"]
    factors = [factor_json(f) for f in jsonb(row["factors_json"])]
    if factors:
        out["factors"] = factors
    return out


def email_identity_data(
    user_id: object, email: str, *, verified: bool = True, extra: Mapping[str, Any] | None = None
) -> str:
    """identity_data of an email identity, as JSON text for a jsonb parameter."""
    data: dict[str, Any] = {
        "sub": str(user_id),
        "email": email,
        "email_verified": verified,
        "phone_verified": False,
    }
    for k, v in (extra or {}).items():
        data.setdefault(k, v)
    return json.dumps(data)


def is_banned(row: Mapping[str, Any]) -> bool:
    until = row["banned_until"]
    return until is not None and until > datetime.now(UTC)


def is_confirmed(row: Mapping[str, Any]) -> bool:
    return row["email_confirmed_at"] is not None or row["phone_confirmed_at"] is not None
