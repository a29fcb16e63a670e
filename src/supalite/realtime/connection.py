"""One websocket: frames in, frames out, the channels joined over it.

As Phoenix's socket does it: `phoenix`/`heartbeat` is answered; `phx_join` starts a channel
(a second join of a topic closes the first); a push to a topic that is not joined gets
`{status: "error", response: {reason: "unmatched topic"}}`; `phx_leave` is answered and
followed by `phx_close`; a frame that cannot be read closes the socket.  Outgoing frames go
through a bounded queue: a consumer too slow to keep up is disconnected instead of growing
memory without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from supalite.config import RealtimeSettings
from supalite.gateway import Claims, Gateway
from supalite.realtime import protocol
from supalite.realtime.channel import Channel, JoinError
from supalite.realtime.protocol import Frame, ProtocolError

if TYPE_CHECKING:
    from supalite.realtime.service import RealtimeService

log = logging.getLogger("supalite.realtime")

IDLE_TIMEOUT = 60.0  # seconds without any frame (heartbeats come every 25 s)
MAX_CHANNELS = 100  # Supabase's default max_channels_per_client
JOIN_RATE_LIMITED = "ClientJoinRateLimitReached: Too many joins per second"
USERS_LIMITED = "ConnectionRateLimitReached: Too many connected users"
OUT_QUEUE = 10_000  # frames waiting for a slow client before it is disconnected
CLOSE_INVALID = 1007
CLOSE_TOO_BIG = 1009
CLOSE_OVERLOAD = 1013


class Connection:
    def __init__(
        self,
        ws: WebSocket,
        service: RealtimeService,
        gateway: Gateway,
        vsn: str,
        claims: Claims,
        token: str,
        limits: RealtimeSettings,
    ) -> None:
        self.ws = ws
        self.service = service
        self.service_gateway = gateway
        self.vsn = vsn
        self.claims = claims
        self.token = token
        self.channels: dict[str, Channel] = {}
        self._out: asyncio.Queue[str | bytes | None] = asyncio.Queue(OUT_QUEUE)
        self._closing: int | None = None
        self.limits = limits
        self._rate = limits.events_per_second
        self._window = (0.0, 0)

    # ------------------------------------------------------------------ running

    async def run(self) -> None:
        writer = asyncio.create_task(self._write_loop(), name="realtime-ws-writer")
        try:
            await self._read_loop()
        finally:
            for ch in list(self.channels.values()):
                ch.dispose()
            self.channels.clear()
            self.service.users.remove(self)  # a user is counted until its socket goes
            self._close(1000)  # no-op when already closing
            with contextlib.suppress(asyncio.TimeoutError, Exception):
                await asyncio.wait_for(writer, 2)
            writer.cancel()

    async def _read_loop(self) -> None:
        while self._closing is None:
            try:
                message = await asyncio.wait_for(self.ws.receive(), IDLE_TIMEOUT)
            except TimeoutError:
                self._close(1000)
                return
            except (WebSocketDisconnect, RuntimeError):
                return
            if message["type"] == "websocket.disconnect":
                self._close(1000)
                return
            text, data = message.get("text"), message.get("bytes")
            size = len(text.encode()) if text is not None else len(data or b"")
            if size > protocol.MAX_FRAME_BYTES:
                log.info("realtime: closing a socket that sent a %d-byte frame", size)
                self._close(CLOSE_TOO_BIG)
                return
            try:
                if text is not None:
                    frame = protocol.decode_text(self.vsn, text)
                else:
                    frame = protocol.decode_binary(self.vsn, data or b"")
            except ProtocolError as e:
                log.info("realtime: closing a socket that sent an unreadable frame (%s)", e)
                self._close(CLOSE_INVALID)
                return
            try:
                await self._dispatch(frame)
            except Exception:
                # A bug in handling one frame: the channel errors, as a crashed Phoenix
                # channel does (`phx_error`), and the socket lives on.
                log.exception("realtime: error handling %s on %s", frame.event, frame.topic)
                ch = self.channels.get(frame.topic)
                if ch is not None:
                    self.push(Frame(ch.topic, "phx_error", {}, ch.join_ref, ch.join_ref))
                    self.channels.pop(ch.topic, None)
                    ch.dispose()

    async def _write_loop(self) -> None:
        try:
            while True:
                item = await self._out.get()
                if item is None:
                    break
                if isinstance(item, bytes):
                    await self.ws.send_bytes(item)
                else:
                    await self.ws.send_text(item)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                await self.ws.close(self._closing or 1000)

    # ------------------------------------------------------------------ frames in

    async def _dispatch(self, frame: Frame) -> None:
        if frame.topic == "phoenix":
            if frame.event == "heartbeat":
                self.reply(frame, "ok", {})
            else:
                self.reply(frame, "error", {"reason": "unmatched topic"})
            return
        if frame.event == "phx_join":
            await self._join(frame)
            return
        ch = self.channels.get(frame.topic)
        if ch is None or (frame.join_ref is not None and frame.join_ref != ch.join_ref):
            self.reply(frame, "error", {"reason": "unmatched topic"})
            return
        if frame.event == "phx_leave":
            self.reply(frame, "ok", {})
            self.close_channel(ch)
            return
        await ch.handle(frame)

    async def _join(self, frame: Frame) -> None:
        if not frame.topic.startswith("realtime:"):
            self.reply(frame, "error", {"reason": "unmatched topic"})
            return
        old = self.channels.get(frame.topic)
        if old is not None:
            self.close_channel(old)  # Phoenix: a duplicate join replaces the channel
        if frame.topic != "realtime:":  # TopicNameRequired comes first, and is not counted
            if not self.service.allow_user(self, self.limits.max_concurrent_users):
                # As Supabase: refused before the joins limit counts it; the socket stays.
                log.warning("realtime: %s", USERS_LIMITED)
                self.reply(frame, "error", {"reason": USERS_LIMITED})
                return
            if not self.service.allow_join(self.limits.max_joins_per_second):
                # As Supabase: the join is refused and the socket disconnected.
                log.warning("realtime: %s", JOIN_RATE_LIMITED)
                self.reply(frame, "error", {"reason": JOIN_RATE_LIMITED})
                self._close(1000)
                return
            if len(self.channels) >= MAX_CHANNELS:
                self.reply(frame, "error", {"reason": "ChannelRateLimitReached: Too many channels"})
                return
        ch = Channel(self, frame)
        try:
            response = await ch.join()
        except JoinError as e:
            ch.dispose()
            self.reply(frame, "error", {"reason": e.reason})
            return
        self.channels[ch.topic] = ch
        self.service.register(ch)
        self.service.users.add(self)  # Supabase counts a socket from its first joined channel
        self.reply(frame, "ok", response)
        await ch.after_join()

    def allow_event(self) -> bool:
        """Client messages per second (`realtime.params.eventsPerSecond`)."""
        now = time.monotonic()
        start, count = self._window
        if now - start >= 1.0:
            start, count = now, 0
        self._window = (start, count + 1)
        return count < self._rate

    # ------------------------------------------------------------------ frames out

    def push(self, frame: Frame, cache: dict[str, str | bytes | None] | None = None) -> None:
        """Queue a frame; `cache` shares one encoding among sockets of a fan-out."""
        if self._closing is not None:
            return
        if cache is None:
            encoded = protocol.encode(self.vsn, frame)
        elif self.vsn in cache:
            encoded = cache[self.vsn]
        else:
            encoded = cache[self.vsn] = protocol.encode(self.vsn, frame)
        if encoded is not None:  # None: e.g. a binary broadcast for a vsn 1.0.0 socket
            self.push_encoded(encoded)

    def push_encoded(self, encoded: str | bytes) -> None:
        """Queue a frame already encoded for this socket's serializer."""
        if self._closing is not None:
            return
        try:
            self._out.put_nowait(encoded)
        except asyncio.QueueFull:
            log.warning("realtime: disconnecting a client %d frames behind", OUT_QUEUE)
            self._close(CLOSE_OVERLOAD)

    def reply(self, frame: Frame, status: str, response: Any) -> None:
        self.push(protocol.reply(frame, status, response))

    def close_channel(self, ch: Channel) -> None:
        if self.channels.get(ch.topic) is ch:
            del self.channels[ch.topic]
        ch.dispose()
        self.push(Frame(ch.topic, "phx_close", {}, ch.join_ref, ch.join_ref))

    def _close(self, code: int) -> None:
        if self._closing is None:
            self._closing = code
            # Unblock the writer even when its queue is full.
            while self._out.full():
                self._out.get_nowait()
            self._out.put_nowait(None)
