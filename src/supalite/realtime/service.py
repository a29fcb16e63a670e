"""The Realtime service of one process: which local channels are joined to which topic,
broadcast and presence delivery (locally, and to other processes through the bus), the change
feed, and the background tasks `app.py` starts and stops.

Nothing another process needs lives only here: presences are rows in
`_supalite.realtime_presence` (with the process that tracks them), broadcasts and presence diffs
go over the bus, and captured changes are rows every process reads.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import asyncpg

from supalite.gateway import Claims
from supalite.realtime import sql
from supalite.realtime.bus import Bus
from supalite.realtime.capture import Capture
from supalite.realtime.changes import PARALLEL_CHECKS, ChangeFeed
from supalite.realtime.limits import RateCounter, UsersCounter
from supalite.realtime.protocol import UserBroadcast

if TYPE_CHECKING:
    from supalite.realtime.channel import Channel
    from supalite.realtime.connection import Connection

log = logging.getLogger("supalite.realtime")

_BEAT_SECONDS = 5
_DEAD_AFTER = 20  # seconds without a heartbeat before a process's presences are reaped

Diff = dict[str, dict[str, dict[str, list[dict[str, Any]]]]]


def _metas(entries: list[tuple[str, str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """[(key, ref, meta)] → `{key: {metas: [{phx_ref, ...meta}]}}`, as Phoenix Presence."""
    out: dict[str, dict[str, Any]] = {}
    for key, ref, meta in entries:
        out.setdefault(key, {"metas": []})["metas"].append({**meta, "phx_ref": ref})
    return out


class RealtimeService:
    def __init__(self, database_url: str) -> None:
        self.node = uuid.uuid4().hex
        self._url = database_url
        self.topics: dict[str, set[Channel]] = defaultdict(set)
        self._feed_wake = asyncio.Event()
        self.capture = Capture(self._connect, self._feed_wake.set)
        self._tasks: list[asyncio.Task[None]] = []
        # This process's share of the tenant-wide limits (docs/realtime.md "Limits").
        self.joins = RateCounter()
        self.presence_events = RateCounter()
        # Tenant-wide like Supabase's: sockets here, plus what the other processes announce.
        self.users = UsersCounter(_DEAD_AFTER)
        self._announced = 0

    async def _connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self._url)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        # Its own small pool (as the database owner): change checks, presence reads and
        # private-channel probes do not queue behind the services' requests.  Room for the
        # change checks in flight and two more, so joins never wait for a busy feed.
        self.pool: asyncpg.Pool = await asyncpg.create_pool(
            self._url, min_size=1, max_size=PARALLEL_CHECKS + 3
        )
        self.feed = ChangeFeed(self.pool, self._pg_subscribers)
        self.bus = Bus(self._connect, self.pool, self.node, self._on_bus, self._on_reconnect)
        async with self.pool.acquire() as conn:
            await conn.execute(sql.NODE_BEAT, self.node)
        await self.capture.prepare()
        await self.feed.start()
        await self.bus.start()
        self._tasks = [
            asyncio.create_task(self.capture.run(), name="realtime-capture"),
            asyncio.create_task(self._feed_loop(), name="realtime-feed"),
            asyncio.create_task(self._beat_loop(), name="realtime-beat"),
        ]

    async def stop(self) -> None:
        for channels in list(self.topics.values()):
            for ch in list(channels):
                ch.close_for_shutdown()
        self.bus.execute(sql.PRESENCE_DEL_NODE, self.node)
        self.bus.publish({"k": "u", "c": 0})  # the others stop counting our sockets now
        self.bus.execute(sql.NODE_GONE, self.node)
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await self.bus.stop()
        await self.pool.close()

    # ------------------------------------------------------------------ registry

    def register(self, ch: Channel) -> None:
        self.topics[ch.key].add(ch)

    def unregister(self, ch: Channel) -> None:
        members = self.topics.get(ch.key)
        if members is not None:
            members.discard(ch)
            if not members:
                del self.topics[ch.key]
        self.untrack(ch)

    def _pg_subscribers(self) -> Iterator[Channel]:
        for channels in self.topics.values():
            for ch in channels:
                if ch.pg_subs:
                    yield ch

    # ------------------------------------------------------------------ limits

    def allow_join(self, limit: int) -> bool:
        """Supabase's `limit_joins`: refused while the average is at the limit, else counted."""
        if self.joins.avg >= limit:
            return False
        self.joins.add()
        return True

    def allow_user(self, conn: Connection, limit: int) -> bool:
        """Supabase's `limit_max_users`: a socket not yet counted may join a channel only
        while fewer than `limit` sockets (on every process) have one."""
        return self.users.counted(conn) or self.users.total() < limit

    def allow_presence_event(self, limit: int) -> bool:
        """Supabase's `limit_presence_event` (a track, or a presence_state sent at join)."""
        if self.presence_events.avg > limit:
            return False
        self.presence_events.add()
        return True

    # ------------------------------------------------------------------ broadcast

    def broadcast(self, key: str, payload: dict[str, Any] | UserBroadcast,
                  sender: Channel | None = None) -> None:  # fmt: skip
        """To every channel on `key` here (but `sender`) and on every other process."""
        self._deliver_broadcast(key, payload, sender)
        message: dict[str, Any] = {"k": "b", "t": key}
        if isinstance(payload, UserBroadcast):
            message.update(
                e=payload.event, j=1 if payload.is_json else 0, m=payload.meta,
                d=payload.data.decode() if payload.is_json
                else base64.b64encode(payload.data).decode(),
            )  # fmt: skip
        else:
            message["p"] = payload
        self.bus.publish(message)

    def _deliver_broadcast(self, key: str, payload: dict[str, Any] | UserBroadcast,
                           sender: Channel | None) -> None:  # fmt: skip
        cache: dict[str, str | bytes | None] = {}  # every channel of a key has one topic
        for ch in list(self.topics.get(key, ())):
            if ch is not sender:
                ch.push_broadcast(payload, cache)

    # ------------------------------------------------------------------ private channels

    async def authorize(
        self, claims: Claims, topic: str, extensions: list[str]
    ) -> dict[str, dict[str, bool]]:
        """`{extension: {read, write}}` for a private topic, from RLS on realtime.messages."""
        async with self.pool.acquire() as db:
            tx = db.transaction()
            await tx.start()
            try:
                raw = await db.fetchval(
                    sql.AUTHORIZE, claims.role, claims.claims_json, topic, extensions
                )
            except asyncpg.PostgresError as e:
                log.warning("realtime: private channel check failed (%s)", e)
                raw = "{}"
            finally:
                await tx.rollback()  # the probe rows never persist
        out: dict[str, dict[str, bool]] = json.loads(raw)
        return out

    # ------------------------------------------------------------------ presence

    def track(self, ch: Channel, meta: dict[str, Any]) -> None:
        """Track (or update) the channel's presence: a diff to everyone, a row for joiners."""
        ref = uuid.uuid4().hex[:16]
        joins_meta = dict(meta)
        leaves: dict[str, Any] = {}
        if ch.presence_ref is not None:
            joins_meta["phx_ref_prev"] = ch.presence_ref
            leaves = _metas([(ch.presence_key, ch.presence_ref, ch.presence_meta or {})])
            self.bus.execute(sql.PRESENCE_DEL, ch.key, ch.presence_ref)
        ch.presence_ref, ch.presence_meta = ref, dict(meta)
        self.bus.execute(sql.PRESENCE_PUT, ch.key, ref, ch.presence_key, self.node,
                         json.dumps(meta))  # fmt: skip
        self._diff(ch.key, _metas([(ch.presence_key, ref, joins_meta)]), leaves)

    def untrack(self, ch: Channel) -> None:
        if ch.presence_ref is None:
            return
        ref, meta = ch.presence_ref, ch.presence_meta or {}
        ch.presence_ref = ch.presence_meta = None
        self.bus.execute(sql.PRESENCE_DEL, ch.key, ref)
        self._diff(ch.key, {}, _metas([(ch.presence_key, ref, meta)]))

    def _diff(self, key: str, joins: dict[str, Any], leaves: dict[str, Any]) -> None:
        self._deliver_diff(key, joins, leaves)
        self.bus.publish({"k": "p", "t": key, "joins": joins, "leaves": leaves})

    def _deliver_diff(self, key: str, joins: dict[str, Any], leaves: dict[str, Any]) -> None:
        cache: dict[str, str | bytes | None] = {}
        sent = 0
        for ch in list(self.topics.get(key, ())):
            sent += ch.push_presence_diff({"joins": joins, "leaves": leaves}, cache)
        if sent:  # every diff delivered counts as a presence event, as on Supabase
            self.presence_events.add(sent)

    async def presence_state(self, key: str) -> dict[str, Any]:
        """Everyone present on `key`: other processes' rows, this process's own memory."""
        entries = [
            (ch.presence_key, ch.presence_ref, ch.presence_meta or {})
            for ch in self.topics.get(key, ())
            if ch.presence_ref is not None
        ]
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(sql.PRESENCE_OTHERS, key, self.node)
        entries += [(r["key"], r["ref"], json.loads(r["meta"])) for r in rows]
        return _metas(entries)

    # ------------------------------------------------------------------ bus and loops

    async def _on_bus(self, m: dict[str, Any]) -> None:
        kind = m.get("k")
        if kind == "c":
            self._feed_wake.set()
        elif kind == "b":
            key = str(m.get("t"))
            if "p" in m:
                self._deliver_broadcast(key, m["p"], None)
            else:
                data = m.get("d") or ""
                if not isinstance(data, str):
                    data = json.dumps(data)
                raw = data.encode() if m.get("j") else base64.b64decode(data)
                meta = m.get("m") if isinstance(m.get("m"), dict) else None
                self._deliver_broadcast(
                    key, UserBroadcast(str(m.get("e", "")), raw, bool(m.get("j")), meta), None
                )
        elif kind == "p":
            self._deliver_diff(str(m.get("t")), m.get("joins") or {}, m.get("leaves") or {})
        elif kind == "u" and isinstance(m.get("c"), int):
            self.users.peer(str(m.get("n")), m["c"])

    async def _on_reconnect(self) -> None:
        self._feed_wake.set()  # changes stored while the listener was away are read now

    async def _feed_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._feed_wake.wait(), 1.0)
            self._feed_wake.clear()
            try:
                await self.feed.catch_up()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
                log.warning("realtime: reading changes failed (%s)", e)
                await asyncio.sleep(0.5)
            except Exception:  # a bug must cost one batch, not every later change
                log.exception("realtime: a batch of changes could not be delivered")

    def _announce_users(self) -> None:
        """Our count of connected users, for the other processes' limit (as Census does,
        every beat; an idle process that has said 0 stays quiet)."""
        count = self.users.local
        if count or self._announced:
            self.bus.publish({"k": "u", "c": count})
        self._announced = count

    async def _beat_loop(self) -> None:
        while True:
            await asyncio.sleep(_BEAT_SECONDS)
            self._announce_users()
            try:
                async with self.pool.acquire() as conn:
                    await conn.execute(sql.NODE_BEAT, self.node)
                    gone = await conn.fetch(sql.REAP_NODES, _DEAD_AFTER)
                    gone += await conn.fetch(sql.REAP_ORPHANS)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
                log.warning("realtime: presence heartbeat failed (%s)", e)
                continue
            by_topic: dict[str, list[tuple[str, str, dict[str, Any]]]] = defaultdict(list)
            for r in gone:
                by_topic[r["topic"]].append((r["key"], r["ref"], json.loads(r["meta"])))
            for key, entries in by_topic.items():
                self._diff(key, {}, _metas(entries))
