"""One joined channel of one socket: its config, its caller's claims, and what it does with
`broadcast`, `presence` and `access_token` pushes.  Replies and errors read as Supabase
Realtime writes them (`realtime_channel.ex`), since realtime-js and realtime-py surface them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from supalite.gateway import Claims
from supalite.realtime import protocol, sql, tokens
from supalite.realtime.changes import PgSubscription, parse_subscription
from supalite.realtime.limits import ClientWindow
from supalite.realtime.protocol import Frame, UserBroadcast

if TYPE_CHECKING:
    from supalite.realtime.connection import Connection

log = logging.getLogger("supalite.realtime")

MAX_PAYLOAD_BYTES = 3000 * 1024  # Supabase's default max_payload_size_in_kb
_CONFIRM_INTERVAL = 300  # seconds between token re-checks, as Supabase's confirm_token
PRESENCE_RATE_LIMITED = "Too many presence messages per second"
CLIENT_PRESENCE_RATE_LIMITED = "Client presence rate limit exceeded"


class JoinError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _bool(value: Any, default: bool = False) -> bool:
    return value if isinstance(value, bool) else default


class Channel:
    def __init__(self, conn: Connection, frame: Frame) -> None:
        self.conn = conn
        self.topic = frame.topic
        self.name = frame.topic.removeprefix("realtime:")
        self.join_ref = frame.join_ref or frame.ref
        payload = _obj(frame.payload)
        config = _obj(payload.get("config"))
        broadcast = _obj(config.get("broadcast"))
        presence = _obj(config.get("presence"))
        self.private = _bool(config.get("private"))
        self.key = ("private:" if self.private else "public:") + self.name
        self.self_broadcast = _bool(broadcast.get("self"))
        self.ack = _bool(broadcast.get("ack"))
        pkey = presence.get("key")
        self.presence_key = pkey if isinstance(pkey, str) and pkey else str(uuid.uuid4())
        self.presence_enabled = _bool(presence.get("enabled"))
        self.presence_ref: str | None = None
        self.presence_meta: dict[str, Any] | None = None
        limits = conn.limits
        self.presence_window = ClientWindow(
            limits.max_client_presence_events_per_window, limits.client_presence_window_ms / 1000
        )
        raw_changes = config.get("postgres_changes")
        self.pg_params: list[Any] = (
            [p for p in raw_changes if p is not None] if isinstance(raw_changes, list) else []
        )
        self.pg_subs: list[PgSubscription] = []
        self.pg_error: str | None = None
        token = payload.get("access_token") or payload.get("user_token")
        if not isinstance(token, str) or token.startswith("sb_"):
            token = conn.token
        self.token: str = token
        self.claims: Claims = conn.claims
        self.expires = 0.0
        self.policies: dict[str, dict[str, bool]] | None = None
        self._expiry: asyncio.Task[None] | None = None
        self.closed = False

    # ------------------------------------------------------------------ joining

    @property
    def identity(self) -> tuple[str, str]:
        return self.claims.role, self.claims.claims_json

    async def join(self) -> dict[str, Any]:
        """Check the join; the reply's response, or JoinError with the reason."""
        if not self.name:
            raise JoinError("TopicNameRequired: You must provide a topic name")
        try:
            self.claims, self.expires = tokens.check(self.conn.service_gateway, self.token)
        except tokens.TokenError as e:
            raise JoinError(e.reason) from None
        if self.private:
            await self._authorize()
            if not (self.can("broadcast", "read") or self.can("presence", "read")):
                raise JoinError(
                    "Unauthorized: You do not have permissions to read from this Channel "
                    f"topic: {self.name}"
                )
        reply = []
        for params in self.pg_params:
            try:
                sub = parse_subscription(params)
            except ValueError as e:
                self.pg_error = str(e)
                reply.append({**params, "id": 0} if isinstance(params, dict) else params)
                continue
            self.pg_subs.append(sub)
            reply.append({**params, "id": sub.id})
        if self.pg_error:
            self.pg_subs = []
        self._schedule_expiry()
        return {"postgres_changes": reply}

    async def after_join(self) -> None:
        """What Supabase pushes once the join reply is out: subscription status, presence."""
        if self.pg_params:
            error = self.pg_error or await self._check_tables()
            capture_error = self.conn.service.capture.error
            if error is None and capture_error:
                error = capture_error
            if error is None:
                self.push_system("postgres_changes", "ok", "Subscribed to PostgreSQL")
            else:
                self.pg_subs = []
                self.push_system("postgres_changes", "error", error)
        if self.presence_enabled and self.can("presence", "read"):
            if not self._allow_presence_event():
                self.shutdown(PRESENCE_RATE_LIMITED)
                return
            await self.sync_presence()

    def _allow_presence_event(self) -> bool:
        limit = self.conn.limits.max_presence_events_per_second
        return self.conn.service.allow_presence_event(limit)

    async def _check_tables(self) -> str | None:
        async with self.conn.service.pool.acquire() as db:
            for sub in self.pg_subs:
                if sub.schema == "*" or sub.table is None:
                    continue
                cols = {r[0] for r in await db.fetch(sql.TABLE_COLUMNS, sub.schema, sub.table)}
                if not cols:
                    return (
                        "Unable to subscribe to changes with given parameters. Please check "
                        "Realtime is enabled for the given connect parameters: "
                        f"[schema: {sub.schema}, table: {sub.table}, filters: "
                        f"{[f'{c}={o}.{v}' for c, o, v in sub.filters]}]"
                    )
                for col, _, _ in sub.filters:
                    if col not in cols:
                        return f"invalid column for filter {col}"
        return None

    async def _authorize(self, presence: bool = False) -> None:
        exts = ["broadcast", "presence"] if self.presence_enabled or presence else ["broadcast"]
        self.policies = await self.conn.service.authorize(self.claims, self.name, exts)

    def can(self, extension: str, action: str) -> bool:
        if not self.private:
            return True
        return bool((self.policies or {}).get(extension, {}).get(action))

    async def sync_presence(self) -> None:
        state = await self.conn.service.presence_state(self.key)
        if self.can("presence", "read"):
            self.conn.push(Frame(self.topic, "presence_state", state, None, self.join_ref))

    # ------------------------------------------------------------------ pushes from the client

    async def handle(self, frame: Frame) -> None:
        if frame.event == "broadcast":
            await self._broadcast(frame)
        elif frame.event == "presence":
            await self._presence(frame)
        elif frame.event == "access_token":
            await self._access_token(frame)
        # Anything else is ignored, as Supabase logs and ignores unexpected client messages.

    async def _broadcast(self, frame: Frame) -> None:
        payload = frame.payload
        if not isinstance(payload, (dict, UserBroadcast)):
            return
        if self.private:
            if self.policies is None:  # checked at join and on each token swap
                await self._authorize()
            if not self.can("broadcast", "write"):
                return
        size = len(payload.data) if isinstance(payload, UserBroadcast) else len(json.dumps(payload))
        if size > MAX_PAYLOAD_BYTES:
            if self.ack:
                self.conn.reply(frame, "error", {"reason": "payload_size_exceeded"})
            return
        if not self.conn.allow_event():
            self.shutdown("Too many messages per second")
            return
        self.conn.service.broadcast(self.key, payload, None if self.self_broadcast else self)
        if self.ack:
            self.conn.reply(frame, "ok", {})

    async def _presence(self, frame: Frame) -> None:
        payload = frame.payload if isinstance(frame.payload, dict) else {}
        if "event" not in payload:  # Supabase answers it and does nothing
            self.conn.reply(frame, "ok", {})
            return
        if not self.presence_window.allow():
            self.shutdown(CLIENT_PRESENCE_RATE_LIMITED)
            return
        event = payload["event"]
        event = event.lower() if isinstance(event, str) else event
        if event == "track":
            meta = payload.get("payload", {})
            if not isinstance(meta, dict):
                self.conn.reply(frame, "error", {"reason": "Presence track payload must be a map"})
                return
            if len(json.dumps(meta)) > MAX_PAYLOAD_BYTES:
                self.shutdown("Track message size exceeded")
                return
            if self.private:
                if "presence" not in (self.policies or {}):
                    await self._authorize(presence=True)
                if not self.can("presence", "write"):
                    self.conn.reply(frame, "error", {})
                    return
            if self._tracking(meta):
                # Supabase's `:no_payload_change`: answered, nothing sent to anyone, and not
                # counted towards the project's presence rate (the channel's window counted it).
                self.conn.reply(frame, "ok", {})
                return
            if not self._allow_presence_event():
                self.shutdown(PRESENCE_RATE_LIMITED)
                return
            if not self.presence_enabled:
                self.presence_enabled = True
                await self.sync_presence()
            self.conn.service.track(self, meta)
            self.conn.reply(frame, "ok", {})
        elif event == "untrack":
            self.conn.service.untrack(self)
            self.conn.reply(frame, "ok", {})
        else:
            self.conn.reply(frame, "error", {})

    def _tracking(self, meta: dict[str, Any]) -> bool:
        """Is `meta` what this channel tracks now?  Compared as Elixir compares the decoded
        maps: key order aside, exactly (`1` is not `1.0`, `true` is not `1`), hence as JSON."""
        if self.presence_ref is None or self.presence_meta is None:
            return False
        return _canonical(meta) == _canonical(self.presence_meta)

    async def _access_token(self, frame: Frame) -> None:
        payload = frame.payload if isinstance(frame.payload, dict) else {}
        token = payload.get("access_token")
        if not isinstance(token, str) or token.startswith("sb_") or token == self.token:
            return
        try:
            claims, expires = tokens.check(self.conn.service_gateway, token)
        except tokens.TokenError as e:
            self.shutdown(e.message)
            return
        previous = self.policies
        self.token, self.claims, self.expires = token, claims, expires
        if self.private:
            await self._authorize()
            for ext in ("broadcast", "presence"):
                was = (previous or {}).get(ext, {}).get("read")
                if was and not self.can(ext, "read"):
                    self.shutdown(
                        "You no longer have permission to read from this Channel topic: "
                        + self.name
                    )
                    return
        self._schedule_expiry()

    # ------------------------------------------------------------------ token expiry

    def _schedule_expiry(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        self._expiry = asyncio.create_task(self._confirm_token(), name="realtime-token")

    async def _confirm_token(self) -> None:
        while True:
            await asyncio.sleep(max(0.0, min(_CONFIRM_INTERVAL, self.expires - time.time())))
            try:
                self.claims, self.expires = tokens.check(self.conn.service_gateway, self.token)
            except tokens.TokenError as e:
                self._expiry = None  # this task is ending; shutdown must not cancel it
                self.shutdown(e.message)
                return

    # ------------------------------------------------------------------ pushes to the client

    def push_system(self, extension: str, status: str, message: str) -> None:
        self.conn.push(Frame(self.topic, "system", {
            "extension": extension, "status": status, "message": message, "channel": self.name,
        }, None, self.join_ref))  # fmt: skip

    def push_broadcast(
        self, payload: dict[str, Any] | UserBroadcast, cache: dict[str, str | bytes | None]
    ) -> None:
        if self.can("broadcast", "read"):
            self.conn.push(Frame(self.topic, "broadcast", payload), cache)

    def push_presence_diff(
        self, diff: dict[str, Any], cache: dict[str, str | bytes | None]
    ) -> bool:
        if self.presence_enabled and self.can("presence", "read"):
            self.conn.push(Frame(self.topic, "presence_diff", diff), cache)
            return True
        return False

    def push_change(self, ids: list[int], data: str) -> None:
        """`data`: the change's JSON, encoded once for every subscriber it reaches."""
        self.conn.push_encoded(protocol.encode_change(self.conn.vsn, self.topic, ids, data))

    # ------------------------------------------------------------------ ending

    def shutdown(self, message: str) -> None:
        """Close the channel from the server: a system error, then `phx_close`."""
        self.push_system("system", "error", message)
        self.conn.close_channel(self)

    def dispose(self) -> None:
        """Forget the channel (after leave, close or a dead socket)."""
        if self.closed:
            return
        self.closed = True
        if self._expiry is not None:
            self._expiry.cancel()
        with contextlib.suppress(Exception):
            self.conn.service.unregister(self)

    def close_for_shutdown(self) -> None:
        self.conn.service.untrack(self)
