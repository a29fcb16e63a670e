"""Data API errors: `{code, message, details, hint}` with PostgREST's statuses.

`ApiError` is raised anywhere in the pipeline; `from_postgres` maps a database error by its
SQLSTATE exactly as PostgREST's `mapSQLtoHTTP` does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import asyncpg


@dataclass
class ApiError(Exception):
    status: int
    code: str
    message: str
    details: Any = None
    hint: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "details": self.details,
            "hint": self.hint,
            "message": self.message,
        }


def _status_for(sqlstate: str, message: str, authenticated: bool) -> int:
    c = sqlstate
    if c.startswith("PT") and len(c) == 5 and c[2:].isdigit():
        return int(c[2:])
    exact = {
        "23503": 409,
        "23505": 409,
        "25006": 405,
        "42883": 404,
        "42P01": 404,
        "42P17": 500,
        "53400": 500,
        "57P01": 503,
        "P0001": 400,
    }
    if c in exact:
        return exact[c]
    if c == "42501":
        return 403 if authenticated else 401
    if c == "21000":
        return 400 if "requires a WHERE clause" in message else 500
    if c == "22023" and "role" in message and "does not exist" in message:
        return 401
    prefixes = {
        "08": 503,
        "09": 500,
        "0L": 403,
        "0P": 403,
        "25": 500,
        "28": 403,
        "2D": 500,
        "38": 500,
        "39": 500,
        "3B": 500,
        "40": 500,
        "53": 503,
        "54": 500,
        "55": 500,
        "57": 500,
        "58": 500,
        "F0": 500,
        "HV": 500,
        "P0": 500,
        "XX": 500,
    }
    return prefixes.get(c[:2], 400)


def from_postgres(e: asyncpg.PostgresError, *, authenticated: bool) -> ApiError:
    sqlstate = getattr(e, "sqlstate", None) or "XX000"
    message = getattr(e, "message", None) or str(e)
    details = getattr(e, "detail", None)
    hint = getattr(e, "hint", None)
    if sqlstate == "PGRST":
        return _raised_pgrst(message, details)
    return ApiError(_status_for(sqlstate, message, authenticated), sqlstate, message, details, hint)


def _raised_pgrst(message: str, details: str | None) -> ApiError:
    """`RAISE SQLSTATE 'PGRST' USING MESSAGE = '{json}', DETAIL = '{status, headers}'`."""
    try:
        body = json.loads(message)
        meta = json.loads(details or "{}")
        status = int(meta.get("status", 400))
        headers = {str(k): str(v) for k, v in (meta.get("headers") or {}).items()}
        if not isinstance(body, dict) or not 100 <= status <= 599:
            raise ValueError
    except (ValueError, TypeError, AttributeError):
        return ApiError(
            500,
            "PGRST121",
            "Could not parse JSON in the \"RAISE SQLSTATE 'PGRST'\" error",
            f"Invalid JSON value for MESSAGE: '{message}'",
            None,
        )
    return ApiError(
        status,
        str(body.get("code", "")),
        str(body.get("message", "")),
        body.get("details"),
        body.get("hint"),
        headers,
    )
