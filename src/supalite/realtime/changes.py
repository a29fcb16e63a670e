"""Postgres changes: what a channel subscribes to, and who receives each captured change.

Every process reads the captured changes (`capture.py`) by position and decides for its own
subscribers.  For each table in a batch it asks the database once (`_supalite.realtime_check`)
about all of its subscribers together: distinct filter sets and distinct (role, claims) pairs
are each evaluated once over the whole batch, so the cost grows with distinct identities, not
with subscribers × changes.  Changes are then pushed in commit order.
"""

from __future__ import annotations

import json
import logging
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg

from supalite.realtime import sql

log = logging.getLogger("supalite.realtime")

EVENTS = ("*", "INSERT", "UPDATE", "DELETE")
OPS = ("eq", "neq", "lt", "lte", "gt", "gte", "in")
_BATCH = 500


@dataclass(frozen=True)
class PgSubscription:
    id: int
    params: dict[str, Any]  # as the client sent them: echoed in the join reply with the id
    event: str
    schema: str
    table: str | None  # None: every table (`*` or absent)
    filters: tuple[tuple[str, str, Any], ...] = ()


def subscription_id(params: dict[str, Any]) -> int:
    """A stable id for equal params (Supabase uses `:erlang.phash2(params)`: 27 bits)."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return zlib.crc32(canonical.encode()) & 0x7FFFFFF


def parse_filter(text: str) -> tuple[tuple[str, str, Any], ...]:
    """`column=op.value` (`in.(a,b)` for lists); ValueError with the reason otherwise."""
    col, eq, rest = text.partition("=")
    op, dot, value = rest.partition(".")
    if not eq or not dot or not col:
        raise ValueError(f"invalid filter {text!r}: expected column=operator.value")
    if op not in OPS:
        raise ValueError(f"invalid filter operator {op!r}")
    if op == "in":
        if not (value.startswith("(") and value.endswith(")")):
            raise ValueError("`in` filter values must be in parentheses")
        items = [v.strip().strip('"') for v in value[1:-1].split(",")]
        return ((col, op, tuple(v for v in items if v != "")),)
    return ((col, op, value),)


def parse_subscription(params: Any) -> PgSubscription:
    if not isinstance(params, dict):
        raise ValueError("each postgres_changes entry must be an object")
    event = params.get("event", "*")
    if not isinstance(event, str) or event.upper() not in EVENTS:
        raise ValueError(f"invalid event {event!r}")
    schema = params.get("schema", "public")
    table = params.get("table")
    filt = params.get("filter")
    if not isinstance(schema, str) or not schema:
        raise ValueError("schema must be a string")
    if table is not None and not isinstance(table, str):
        raise ValueError("table must be a string")
    if filt is not None and not isinstance(filt, str):
        raise ValueError("filter must be a string")
    filters = parse_filter(filt) if filt else ()
    if filters and (table in (None, "*") or schema == "*"):
        raise ValueError("a filter needs one table")
    return PgSubscription(
        subscription_id(params), params, event.upper(), schema,
        None if table in (None, "*") else table, filters,
    )  # fmt: skip


class Subscriber(Protocol):
    """A joined channel, as the change feed sees it."""

    pg_subs: list[PgSubscription]

    @property
    def identity(self) -> tuple[str, str]: ...  # (role, claims JSON)

    def push_change(self, ids: list[int], data: dict[str, Any]) -> None: ...


class ChangeFeed:
    """Reads `_supalite.realtime_changes` after the last position seen; one batch at a time."""

    def __init__(self, pool: asyncpg.Pool, subscribers: Callable[[], Iterable[Subscriber]]) -> None:
        self._pool = pool
        self._subscribers = subscribers
        self.position = 0

    async def start(self) -> None:
        async with self._pool.acquire() as conn:
            self.position = await conn.fetchval(sql.CHANGES_HEAD)

    async def catch_up(self) -> None:
        while True:
            async with self._pool.acquire() as conn:
                rows = await conn.fetch(sql.CHANGES_AFTER, self.position, _BATCH)
                if not rows:
                    return
                self.position = rows[-1]["id"]
                subs: list[Subscriber] = [s for s in self._subscribers() if s.pg_subs]
                if subs:
                    changes = [json.loads(r["body"]) for r in rows]
                    await self._dispatch(conn, changes, subs)
            if len(rows) < _BATCH:
                return

    async def _dispatch(
        self, conn: asyncpg.Connection, changes: list[dict[str, Any]], subs: list[Subscriber]
    ) -> None:
        by_table: dict[tuple[str, str], list[int]] = defaultdict(list)
        for i, c in enumerate(changes):
            by_table[(c["schema"], c["table"])].append(i)
        out: dict[int, list[tuple[Subscriber, list[int], dict[str, Any]]]] = defaultdict(list)
        for (schema, table), idxs in by_table.items():
            interested = [
                (
                    s,
                    [
                        p
                        for p in s.pg_subs
                        if p.schema in ("*", schema) and p.table in (None, table)
                    ],
                )
                for s in subs
            ]
            interested = [(s, ps) for s, ps in interested if ps]
            if not interested:
                continue
            await self._table(conn, schema, table, [changes[i] for i in idxs], idxs,
                              interested, out)  # fmt: skip
        for i in range(len(changes)):
            for sub, ids, data in out.get(i, ()):
                sub.push_change(ids, data)

    async def _table(
        self,
        conn: asyncpg.Connection,
        schema: str,
        table: str,
        changes: list[dict[str, Any]],
        positions: list[int],
        interested: list[tuple[Subscriber, list[PgSubscription]]],
        out: dict[int, list[tuple[Subscriber, list[int], dict[str, Any]]]],
    ) -> None:
        identities = sorted({s.identity for s, _ in interested})
        filter_sets = sorted({p.filters for _, ps in interested for p in ps if p.filters})
        wire = [{"type": c["type"], "new": c["new"], "old": c["old"]} for c in changes]
        try:
            raw = await conn.fetchval(
                sql.CHECK,
                f'"{schema.replace(chr(34), chr(34) * 2)}"."{table.replace(chr(34), chr(34) * 2)}"',
                json.dumps(wire),
                json.dumps([[list(f) for f in fs] for fs in filter_sets]),
                json.dumps([list(i) for i in identities]),
            )
        except asyncpg.PostgresError as e:  # the table is gone, or changed beyond recognition
            log.warning("realtime: cannot check changes of %s.%s (%s)", schema, table, e)
            return
        res = json.loads(raw)
        fsets = {fs: set(res["filters"][k]) for k, fs in enumerate(filter_sets)}
        visible: dict[tuple[str, str], Any] = {
            ident: (set(v) if isinstance(v, list) else v)
            for ident, v in zip(identities, res["visible"], strict=True)
        }
        key: list[str] = res["key"]
        # One payload per (change, role, error): subscribers share it (it is only read).
        payloads: dict[tuple[int, str, str | None], dict[str, Any]] = {}

        def payload(n: int, role: str, err: str | None) -> dict[str, Any]:
            k = (n, role, err)
            if k not in payloads:
                payloads[k] = _payload(changes[n], res, n, role, [err] if err else None)
            return payloads[k]

        for n, change in enumerate(changes):
            kind = change["type"]
            for sub, pgs in interested:
                ids = [
                    p.id for p in pgs
                    if (p.event in ("*", kind)) and (not p.filters or n in fsets[p.filters])
                ]  # fmt: skip
                if not ids:
                    continue
                vis = visible[sub.identity]
                role = sub.identity[0]
                if vis is None or not key:
                    err = (
                        "Error 401: Unauthorized"
                        if key
                        else "Error 400: Bad Request, no primary key"
                    )
                    data = payload(n, role, err)
                elif vis is True or kind == "DELETE" or n in vis:
                    data = payload(n, role, None)
                else:
                    continue
                out[positions[n]].append((sub, sorted(set(ids)), data))


def _payload(
    change: dict[str, Any], res: dict[str, Any], n: int, role: str,
    errors: list[str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The `data` of a postgres_changes push, with only the columns `role` may read."""
    readable = set(res["readable"].get(role, ()))
    kind = change["type"]
    key: list[str] = res["key"]

    def cut(row: dict[str, Any] | None) -> dict[str, Any]:
        if errors or not row:
            return {}
        return {k: v for k, v in row.items() if k in readable}

    new = res["new"][n]
    old = res["old"][n]
    if kind == "UPDATE" and not old and new:
        old = {k: new[k] for k in key if k in new}  # the key, as the replica identity gives it
    if kind == "DELETE" and old and res["rls"]:
        old = {k: old[k] for k in key if k in old}  # RLS can no longer be checked: key only
    data: dict[str, Any] = {
        "schema": change["schema"],
        "table": change["table"],
        "commit_timestamp": change["ts"],
        "type": kind,
        "columns": [c for c in res["columns"] if c["name"] in readable],
        "errors": errors,
    }
    if kind in ("INSERT", "UPDATE"):
        data["record"] = cut(new)
    if kind in ("UPDATE", "DELETE"):
        data["old_record"] = cut(old)
    return data
