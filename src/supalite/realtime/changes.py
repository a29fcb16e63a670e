"""Postgres changes: what a channel subscribes to, and who receives each captured change.

Every process reads the captured changes (`capture.py`) by position and decides for its own
subscribers, in the database: for each table in a batch, `_supalite.realtime_rows` once (typed
rows, filters, readable columns) and `_supalite.realtime_rls` per chunk of distinct (role,
claims) — chunks on several connections at once — so the cost grows with distinct identities,
not with subscribers × changes.  Each payload is encoded once per (change, role); changes are
pushed in commit order.  Bootstrap step 0009 and docs/realtime.md say how.
"""

from __future__ import annotations

import asyncio
import json
import logging
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg

from supalite.realtime import protocol, sql

log = logging.getLogger("supalite.realtime")

EVENTS = ("*", "INSERT", "UPDATE", "DELETE")
OPS = ("eq", "neq", "lt", "lte", "gt", "gte", "in")
_BATCH = 500
PARALLEL_CHECKS = 3  # check calls in flight at once, each on its own pooled connection
MIN_CHUNK = 32  # distinct identities worth a `realtime_rls` call (and a connection) of their own
_UNAUTHORIZED = "Error 401: Unauthorized"
_NO_KEY = "Error 400: Bad Request, no primary key"


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


Identity = tuple[str, str]  # (role, claims JSON): who a check runs as


class Subscriber(Protocol):
    """A joined channel, as the change feed sees it."""

    pg_subs: list[PgSubscription]

    @property
    def identity(self) -> Identity: ...

    def push_change(self, ids: list[int], data: str) -> None: ...  # data: encoded JSON


Delivery = tuple[Subscriber, list[int], str]  # who, the subscription ids, the encoded data
Interest = tuple[Subscriber, list[PgSubscription]]  # a subscriber, its subscriptions to a table


class ChangeFeed:
    """Reads `_supalite.realtime_changes` after the last position seen; one batch at a time."""

    def __init__(self, pool: asyncpg.Pool, subscribers: Callable[[], Iterable[Subscriber]]) -> None:
        self._pool = pool
        self._subscribers = subscribers
        self._checks = asyncio.Semaphore(PARALLEL_CHECKS)
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
                await self._dispatch([json.loads(r["body"]) for r in rows], subs)
            if len(rows) < _BATCH:
                return

    async def _dispatch(self, changes: list[dict[str, Any]], subs: list[Subscriber]) -> None:
        by_table: dict[tuple[str, str], list[int]] = defaultdict(list)
        for i, c in enumerate(changes):
            by_table[(c["schema"], c["table"])].append(i)
        work = []
        for (schema, table), idxs in by_table.items():
            interested = [
                (s, ps)
                for s in subs
                if (ps := [p for p in s.pg_subs
                           if p.schema in ("*", schema) and p.table in (None, table)])
            ]  # fmt: skip
            if interested:
                work.append((idxs, self._table(schema, table, [changes[i] for i in idxs],
                                               interested)))  # fmt: skip
        # The tables of a batch are checked concurrently; pushes still go out in commit order.
        results = await asyncio.gather(*(w for _, w in work))
        out: dict[int, list[Delivery]] = {}
        for (idxs, _), per_change in zip(work, results, strict=True):
            for i, deliveries in zip(idxs, per_change, strict=True):
                out[i] = deliveries
        for i in range(len(changes)):
            for sub, ids, data in out.get(i, ()):
                sub.push_change(ids, data)

    async def _call(self, statement: str, *args: Any) -> Any:
        async with self._checks, self._pool.acquire() as conn:
            return json.loads(await conn.fetchval(statement, *args))

    async def _check(
        self,
        schema: str,
        table: str,
        changes: list[dict[str, Any]],
        identities: list[Identity],
        filter_sets: list[tuple[tuple[str, str, Any], ...]],
    ) -> tuple[dict[str, Any], dict[Identity, Any]] | None:
        """The database's answers for one table's changes: the rows, filters and readable
        columns; per identity, None (401), True (sees every row) or the rows it may see.
        None when the table cannot be checked (dropped, or changed beyond use)."""
        rel = f'"{schema.replace(chr(34), chr(34) * 2)}"."{table.replace(chr(34), chr(34) * 2)}"'
        wire = json.dumps([{"type": c["type"], "new": c["new"], "old": c["old"]} for c in changes])
        chunks = _chunks(identities)
        fsets_json = json.dumps([[list(f) for f in fs] for fs in filter_sets])
        roles = sorted({role for role, _ in identities})
        settled = await asyncio.gather(
            self._call(sql.ROWS, rel, wire, fsets_json, roles),
            *(self._call(sql.RLS, rel, wire, json.dumps([list(i) for i in chunk]))
              for chunk in chunks),
            return_exceptions=True,
        )  # fmt: skip
        answers: list[Any] = []
        for a in settled:
            if isinstance(a, asyncpg.PostgresError):  # the table is gone, or changed beyond use
                log.warning("realtime: cannot check changes of %s.%s (%s)", schema, table, a)
                return None
            if isinstance(a, BaseException):
                raise a
            answers.append(a)
        res: dict[str, Any] = answers[0]
        visible: dict[Identity, Any] = {}
        for chunk, part in zip(chunks, answers[1:], strict=True):
            for ident, v in zip(chunk, part, strict=True):
                visible[ident] = set(v) if isinstance(v, list) else v
        return res, visible

    async def _table(
        self,
        schema: str,
        table: str,
        changes: list[dict[str, Any]],
        interested: list[Interest],
    ) -> list[list[Delivery]]:
        """Per change of one table, in order: who receives it, with which ids and payload."""
        groups: dict[Identity, list[Interest]] = defaultdict(list)
        for sub, pgs in interested:
            groups[sub.identity].append((sub, pgs))
        identities = sorted(groups)  # by role first: the plan cache re-plans on a role switch
        filter_sets = sorted({p.filters for _, ps in interested for p in ps if p.filters})
        checked = await self._check(schema, table, changes, identities, filter_sets)
        if checked is None:
            return [[] for _ in changes]
        res, visible = checked
        fsets = {fs: set(res["filters"][k]) for k, fs in enumerate(filter_sets)}
        key: list[str] = res["key"]
        # One encoded payload per (change, role, error): every subscriber it reaches shares it.
        payloads: dict[tuple[int, str, str | None], str] = {}
        plain: dict[tuple[int, str], list[int]] = {}
        out: list[list[Delivery]] = [[] for _ in changes]
        for n, change in enumerate(changes):
            kind = change["type"]
            for ident in identities:
                vis = visible[ident]
                if vis is None or not key:
                    err: str | None = _UNAUTHORIZED if key else _NO_KEY
                elif vis is True or kind == "DELETE" or n in vis:
                    err = None
                else:
                    continue
                data: str | None = None
                for sub, pgs in groups[ident]:
                    if any(p.filters for p in pgs):
                        ids = _ids(pgs, kind, n, fsets)
                    else:  # the same for every change of a kind
                        plain_key = (id(pgs), kind)
                        if plain_key not in plain:
                            plain[plain_key] = _ids(pgs, kind, n, fsets)
                        ids = plain[plain_key]
                    if not ids:
                        continue
                    if data is None:
                        pk = (n, ident[0], err)
                        if pk not in payloads:
                            payloads[pk] = protocol.dumps(
                                _payload(change, res, n, ident[0], [err] if err else None)
                            )
                        data = payloads[pk]
                    out[n].append((sub, ids, data))
        return out


def _ids(pgs: list[PgSubscription], kind: str, n: int, fsets: dict[Any, set[int]]) -> list[int]:
    """The ids of a subscriber's subscriptions that change `n` (of type `kind`) matches."""
    return sorted({
        p.id for p in pgs
        if p.event in ("*", kind) and (not p.filters or n in fsets[p.filters])
    })  # fmt: skip


def _chunks(identities: list[Identity]) -> list[list[Identity]]:
    """The identities split evenly for `realtime_rls` calls that run at once on several
    connections (each checks its identities one after another)."""
    n = max(1, min(PARALLEL_CHECKS, len(identities) // MIN_CHUNK))
    size = -(-len(identities) // n)
    return [identities[i : i + size] for i in range(0, len(identities), size)]


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
