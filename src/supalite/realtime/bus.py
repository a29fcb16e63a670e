"""Fan-out between supalite processes, through Postgres: LISTEN/NOTIFY on one channel.

Every message is a small JSON object naming the process that sent it (`n`); each process
delivers its own messages to its own sockets directly and skips them when they come back.
Bodies over NOTIFY's 8000-byte limit go through `_supalite.realtime_bus` (the notification
then carries only the row id), so size never decides whether a message arrives.  One
publisher connection sends in order; one listener connection receives, and hands messages on
in the order they arrived (a fetched overflow body keeps its place).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from supalite.realtime import sql

log = logging.getLogger("supalite.realtime")

CHANNEL = "supalite_realtime"
_QUEUE_LIMIT = 100_000  # pending outgoing messages before new ones are dropped (DB down)


class Bus:
    def __init__(
        self,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        pool: asyncpg.Pool,
        node: str,
        on_message: Callable[[dict[str, Any]], Awaitable[None]],
        on_reconnect: Callable[[], Awaitable[None]],
    ) -> None:
        self._connect = connect
        self._pool = pool
        self.node = node
        self._on_message = on_message
        self._on_reconnect = on_reconnect
        self._out: deque[tuple[str, tuple[Any, ...]]] = deque()
        self._wake = asyncio.Event()
        self._in: asyncio.Queue[str | None] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._listener: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._busy = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await self._listen()
        self._tasks = [
            asyncio.create_task(self._publish_loop(), name="realtime-bus-publish"),
            asyncio.create_task(self._receive_loop(), name="realtime-bus-receive"),
            asyncio.create_task(self._watch_loop(), name="realtime-bus-watch"),
        ]

    async def stop(self) -> None:
        # Let queued messages (e.g. presence leaves at shutdown) go out first.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained(), 3)
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()

    async def _drained(self) -> None:
        while self._out or self._busy:
            await asyncio.sleep(0.01)

    # ------------------------------------------------------------------ sending

    def publish(self, message: dict[str, Any]) -> None:
        """Queue a message for every other process; never blocks the caller."""
        body = json.dumps({**message, "n": self.node}, separators=(",", ":"))
        self._enqueue("notify", (body,))

    def execute(self, statement: str, *args: Any) -> None:
        """Queue a statement to run in order with the messages around it."""
        self._enqueue("sql", (statement, *args))

    def _enqueue(self, kind: str, item: tuple[Any, ...]) -> None:
        if len(self._out) >= _QUEUE_LIMIT:
            log.warning("realtime: bus queue full, dropping a %s", kind)
            return
        self._out.append((kind, item))
        self._wake.set()

    async def _publish_loop(self) -> None:
        conn: asyncpg.Connection | None = None
        while True:
            self._busy = False
            while not self._out:
                self._wake.clear()
                await self._wake.wait()
            self._busy = True
            kind, item = self._out.popleft()
            batch = [item[0]] if kind == "notify" else []
            # Consecutive notifications go in one statement, still in order.
            while (
                kind == "notify" and self._out and self._out[0][0] == "notify" and len(batch) < 200
            ):
                batch.append(self._out.popleft()[1][0])
            for attempt in range(2):
                try:
                    if conn is None or conn.is_closed():
                        conn = await self._connect()
                    if kind == "notify":
                        await conn.execute(sql.PUBLISH, batch)
                    else:
                        await conn.execute(item[0], *item[1:])
                    break
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
                    log.warning("realtime: bus publish failed (%s)", e)
                    if conn is not None:
                        with contextlib.suppress(Exception):
                            await conn.close()
                    conn = None
                    if attempt:
                        await asyncio.sleep(0.5)

    # ------------------------------------------------------------------ receiving

    async def _listen(self) -> None:
        conn = await self._connect()
        await conn.add_listener(CHANNEL, self._notified)
        conn.add_termination_listener(lambda _c: self._lost.set())
        self._listener = conn

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self._in.put_nowait(payload)

    async def _watch_loop(self) -> None:
        """Reconnect the listener when its connection dies; then let the owner catch up."""
        while True:
            await self._lost.wait()
            self._lost.clear()
            delay = 0.2
            while True:
                try:
                    await self._listen()
                    break
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5)
            log.info("realtime: bus listener reconnected")
            await self._on_reconnect()

    async def _receive_loop(self) -> None:
        while True:
            payload = await self._in.get()
            if payload is None:
                continue
            try:
                message = json.loads(payload)
                if message.get("k") == "ref":
                    message = await self._fetch(int(message["id"]))
                    if message is None:
                        continue
                if not isinstance(message, dict) or message.get("n") == self.node:
                    continue
                await self._on_message(message)
            except Exception:  # one bad message must not stop the bus
                log.exception("realtime: bus message dropped")

    async def _fetch(self, bus_id: int) -> dict[str, Any] | None:
        async with self._pool.acquire() as conn:
            body = await conn.fetchval(sql.BUS_FETCH, bus_id)
        if body is None:
            return None
        out = json.loads(body)
        return out if isinstance(out, dict) else None
