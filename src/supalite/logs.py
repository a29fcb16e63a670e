"""The structured request log: one JSON line per request in `<data>/logs/requests.jsonl`.

Fields: time, service, method, path, status, duration_ms, role.  Written by the app's outermost
layer (edge.py; no per-request task or thread); each worker appends whole lines with O_APPEND,
so several processes can share the file.  `supalite logs` and the MCP log tools read it.
"""

from __future__ import annotations

import collections
import functools
import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_ROTATE_BYTES = 64 * 1024 * 1024
_SERVICES = {
    "rest": "rest", "graphql": "graphql", "auth": "auth", "storage": "storage",
    "realtime": "realtime", "functions": "functions", "pg": "pg", "mcp": "mcp",
    "admin": "functions",  # /admin/v1: deployed functions and their secrets
}  # fmt: skip
# What a `service` filter may name: every value `service_of` can give.
SERVICES = (*sorted(set(_SERVICES.values())), "gateway")


def log_path(data_dir: Path) -> Path:
    """Where a project's request log lives (its data directory's `logs/requests.jsonl`)."""
    return data_dir / "logs" / "requests.jsonl"


# One encoder for every line: `json.dumps` with options builds a new one per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"))


@functools.lru_cache(maxsize=2)
def _second(epoch_second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_second))


def _timestamp(now: float) -> str:
    """ISO 8601 UTC with milliseconds; the seconds part is formatted once per second."""
    return f"{_second(int(now))}.{int(now * 1000) % 1000:03d}Z"


def timestamp() -> str:
    """Now, as every entry's `time` is written."""
    return _timestamp(time.time())


def service_of(path: str) -> str:
    first = path.lstrip("/").split("/", 1)[0]
    return _SERVICES.get(first, "gateway")


class RequestLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._writes = 0

    def write(self, entry: dict[str, Any]) -> None:
        line = _ENCODER.encode(entry) + "\n"
        os.write(self._fd, line.encode())
        self._writes += 1
        if self._writes % 4096 == 0:
            self._maybe_rotate()

    def _maybe_rotate(self) -> None:
        try:
            if os.fstat(self._fd).st_size < _ROTATE_BYTES:
                return
            os.replace(self.path, self.path.with_suffix(".jsonl.1"))
        except OSError:
            return
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def close(self) -> None:
        os.close(self._fd)


def read_log(
    path: Path,
    service: str | None = None,
    limit: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    function: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Entries oldest first (the rotated file before the current one), filtered by service,
    by function name and by time (`since` <= time < `until`); `limit` keeps the last N that
    match."""
    # Times are compared as strings: every entry's is the same fixed-width UTC format.
    lo, hi = (
        t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z") if t else None
        for t in (since, until)
    )
    entries: collections.deque[dict[str, Any]] = collections.deque(
        maxlen=limit if limit and limit > 0 else None
    )
    for p in (path.with_suffix(".jsonl.1"), path):
        try:
            with open(p, encoding="utf-8", errors="replace") as f:
                for line in f:
                    try:
                        entry = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line cut by a crash mid-write
                    if not isinstance(entry, dict):
                        continue
                    if service is not None and entry.get("service") != service:
                        continue
                    if function is not None and entry.get("function") != function:
                        continue
                    if lo is not None or hi is not None:
                        t = entry.get("time")
                        if not isinstance(t, str) or (lo and t < lo) or (hi and t >= hi):
                            continue
                    entries.append(entry)
        except FileNotFoundError:
            continue
    yield from entries
