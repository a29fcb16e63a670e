"""The request log over the admin path (`GET /pg/logs`): parameters checked, entries newest first.

The reading and filtering are `supalite.logs.read_log`'s, the same `supalite logs` uses; this
module only turns query parameters into its arguments and refuses bad ones with a PgError.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from supalite.logs import SERVICES, read_log
from supalite.pg.service import PgError

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_PARAMS = {"service", "function", "since", "until", "limit"}


def _time(params: Mapping[str, str], key: str) -> datetime | None:
    raw = params.get(key)
    if raw is None or raw == "":
        return None
    try:
        t = datetime.fromisoformat(raw.strip())
    except ValueError as e:
        raise PgError(
            "22007", f"'{key}' must be an ISO 8601 timestamp, e.g. 2026-01-31T12:00:00Z"
        ) from e
    # A time without an offset is UTC, as the log's own times are.
    try:
        return (t if t.tzinfo is not None else t.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError as e:
        raise PgError("22008", f"'{key}' is out of range") from e


def _limit(params: Mapping[str, str]) -> int:
    raw = params.get("limit")
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    digits = raw.lstrip("0")
    if not (raw.isascii() and raw.isdigit()) or not digits:
        raise PgError("22023", "'limit' must be a positive integer")
    # A number of more than 12 digits is over the cap anyway (and int() refuses huge ones).
    return min(int(digits) if len(digits) <= 12 else MAX_LIMIT, MAX_LIMIT)


def query(path: Path, params: Mapping[str, str]) -> dict[str, Any]:
    """`{entries, limit, more}`: the newest `limit` entries matching the filters, newest first;
    `more` says older matching entries were left out."""
    unknown = sorted(set(params) - _PARAMS)
    if unknown:
        raise PgError("22023", f"unknown parameter(s): {', '.join(unknown)}")
    service = params.get("service") or None
    if service is not None and service not in SERVICES:
        raise PgError("22023", f"unknown service '{service}' (known: {', '.join(SERVICES)})")
    since, until = _time(params, "since"), _time(params, "until")
    if since is not None and until is not None and since >= until:
        raise PgError("22023", "'since' must be before 'until'")
    limit = _limit(params)
    # One entry more than asked for tells whether older ones were left out.
    function = params.get("function") or None
    entries = list(
        read_log(
            path, service=service, limit=limit + 1, since=since, until=until, function=function
        )
    )
    entries.reverse()
    return {"entries": entries[:limit], "limit": limit, "more": len(entries) > limit}
