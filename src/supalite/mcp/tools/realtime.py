"""Realtime tools: watch a table's changes for a while, and broadcast to a channel.

`watch_changes` is a Realtime client like an app's: it opens the project's
`/realtime/v1/websocket` with this view's apikey, joins a channel with a `postgres_changes`
config as realtime-js sends it and the caller's access token, and collects what arrives.  In
user mode that is the user's token, so RLS decides which changes are seen, exactly as for the
app.  The same `ChangeStream` serves the MCP resource subscriptions (resources.py).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus, WebSocketException

from supalite.db.schema_cache import quote_ident
from supalite.mcp.backend import Backend, BackendError
from supalite.mcp.tools import (
    ToolContext,
    ToolFailure,
    ToolResult,
    ToolSpec,
    cap_rows,
    obj,
    rows_output,
    rows_result,
)

MAX_EVENTS = 100  # changes one watch_changes call collects at most
MAX_TIMEOUT_S = 60.0  # MCP clients give up on tool calls not much later than this
DEFAULT_TIMEOUT_S = 10.0
_JOIN_TIMEOUT_S = 15.0
_HEARTBEAT_S = 25.0  # as realtime-js: the server closes sockets silent for 60 s
_EVENTS = ("INSERT", "UPDATE", "DELETE", "*")
_CHANGE_KEYS = ("type", "schema", "table", "commit_timestamp", "record", "old_record", "errors")


class RealtimeError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def websocket_url(backend: Backend) -> str:
    """The project's Realtime websocket, from its API URL (http → ws, https → wss).

    Always a real socket, also for `/mcp` in a supalite process, whose HTTP calls go through
    an in-process ASGI transport that cannot carry websockets: its URL is the server's own."""
    base = backend.config.url.rstrip("/")
    scheme, sep, rest = base.partition("://")
    ws = {"https": "wss", "http": "ws"}.get(scheme.lower(), scheme)
    return f"{ws}{sep}{rest}/realtime/v1/websocket?vsn=1.0.0"


def _access_token(backend: Backend) -> str:
    scheme, _, token = backend.auth_headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else backend.auth_headers["apikey"]


class ChangeStream:
    """One joined channel's Postgres changes, read one at a time (Phoenix vsn 1.0.0 frames)."""

    def __init__(self, ws: ClientConnection, topic: str) -> None:
        self.ws = ws
        self.topic = topic
        self._ref = 0
        self._next_beat = time.monotonic() + _HEARTBEAT_S

    async def send(self, topic: str, event: str, payload: Any, join: bool = False) -> str:
        self._ref += 1
        ref = str(self._ref)
        frame = {"topic": topic, "event": event, "payload": payload, "ref": ref,
                 "join_ref": ref if join else None}  # fmt: skip
        await self.ws.send(json.dumps(frame))
        return ref

    async def _frame(self, deadline: float) -> dict[str, Any] | None:
        """The next frame before `deadline` (None at it), heartbeating meanwhile."""
        while True:
            now = time.monotonic()
            if now >= deadline:
                return None
            if now >= self._next_beat:
                await self.send("phoenix", "heartbeat", {})
                self._next_beat = now + _HEARTBEAT_S
            try:
                # Cancelling recv() loses nothing (websockets' guarantee).
                raw = await asyncio.wait_for(self.ws.recv(), min(deadline, self._next_beat) - now)
            except TimeoutError:
                continue
            except WebSocketException as e:
                raise RealtimeError("realtime_closed", f"the Realtime socket closed: {e}") from e
            if isinstance(raw, bytes):
                continue  # binary user broadcasts: not for this channel's purpose
            try:
                frame = json.loads(raw)
            except ValueError as e:
                raise RealtimeError(
                    "realtime_protocol", "Realtime sent a frame that is not JSON"
                ) from e
            if isinstance(frame, dict) and frame.get("topic") == self.topic:
                return frame

    async def join(self, config: dict[str, Any], access_token: str) -> None:
        payload = {"config": config, "access_token": access_token}
        ref = await self.send(self.topic, "phx_join", payload, join=True)
        deadline = time.monotonic() + _JOIN_TIMEOUT_S
        while (frame := await self._frame(deadline)) is not None:
            body = frame.get("payload") or {}
            if frame.get("event") == "phx_reply" and frame.get("ref") == ref:
                if body.get("status") != "ok":
                    reason = (body.get("response") or {}).get("reason", body)
                    raise RealtimeError("join_failed", f"Realtime refused the channel: {reason}")
            elif frame.get("event") == "system" and body.get("extension") == "postgres_changes":
                if body.get("status") == "ok":
                    return
                raise RealtimeError("subscription_failed", str(body.get("message")))
        raise RealtimeError("timeout", "Realtime did not confirm the subscription in time")

    async def next_change(self, timeout: float) -> dict[str, Any] | None:
        """The next change (Supabase's `data`: type, schema, table, record, …), None after
        `timeout` seconds; RealtimeError when the server closes the channel."""
        deadline = time.monotonic() + timeout
        while (frame := await self._frame(deadline)) is not None:
            event, payload = frame.get("event"), frame.get("payload") or {}
            if event == "postgres_changes" and isinstance(payload.get("data"), dict):
                data: dict[str, Any] = payload["data"]
                return data
            if event == "phx_close" or (event == "system" and payload.get("status") == "error"):
                raise RealtimeError(
                    "channel_closed",
                    f"Realtime closed the channel: {payload.get('message') or 'phx_close'}",
                )
        return None


@asynccontextmanager
async def open_changes(
    backend: Backend, schema: str, table: str, event: str = "*", row_filter: str | None = None
) -> AsyncIterator[ChangeStream]:
    """A subscription to one table's changes, as this view's caller, confirmed by the server
    ("Subscribed to PostgreSQL") before it is yielded; left and closed afterwards."""
    params: dict[str, Any] = {"event": event, "schema": schema, "table": table}
    if row_filter:
        params["filter"] = row_filter
    config = {
        "broadcast": {"self": False, "ack": False},
        "presence": {"key": "", "enabled": False},
        "postgres_changes": [params],
        "private": False,
    }
    try:
        ws = await connect(
            websocket_url(backend),
            additional_headers={"apikey": backend.auth_headers["apikey"]},
            open_timeout=_JOIN_TIMEOUT_S,
            max_size=16 * 1024 * 1024,
        )
    except InvalidStatus as e:
        body = e.response.body.decode("utf-8", "replace")[:300] if e.response.body else ""
        raise RealtimeError(
            "realtime_unavailable",
            f"Realtime refused the connection ({e.response.status_code}) {body}".strip(),
        ) from e
    except (OSError, TimeoutError, WebSocketException) as e:
        raise RealtimeError("network", f"cannot reach Realtime at {backend.config.url}: {e}") from e
    try:
        stream = ChangeStream(ws, f"realtime:mcp-{uuid.uuid4().hex[:12]}")
        await stream.join(config, _access_token(backend))
        yield stream
        with suppress(WebSocketException):
            await stream.send(stream.topic, "phx_leave", {})
    finally:
        await ws.close()


_PUBLISHED = """
select exists (select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace
               where n.nspname = $1 and c.relname = $2 and c.relkind in ('r', 'p')) as found,
       exists (select 1 from pg_publication_tables
               where pubname = 'supabase_realtime' and schemaname = $1 and tablename = $2)
         as published
"""


async def check_published(ctx: ToolContext, schema: str, table: str) -> ToolFailure | None:
    """Why changes of the table cannot arrive (missing, or not in the `supabase_realtime`
    publication, with the fix), or None.  Realtime itself subscribes to an unpublished table
    without complaint and then delivers nothing, so the catalog is asked first, where the
    admin SQL path is this server's to use (service mode)."""
    if ctx.backend.user_mode:
        return None
    try:
        out = await ctx.backend.sql.query(
            _PUBLISHED, [schema, table], read_only=True, max_rows=1, max_bytes=4096
        )
    except BackendError:
        return None  # no admin SQL path here (a Supabase project without DATABASE_URL)
    row = out["rows"][0] if out["rows"] else {}
    if not row.get("found"):
        return ToolFailure("not_found", f"no table {schema}.{table}")
    if not row.get("published"):
        name = f"{quote_ident(schema)}.{quote_ident(table)}"
        fix = f"alter publication supabase_realtime add table {name};"
        return ToolFailure(
            "not_in_publication",
            f"{schema}.{table} is not in the supabase_realtime publication, so Realtime sends "
            f"no changes of it. To enable them (ask the user first), apply the migration: {fix}",
            {"fix_sql": fix},
        )
    return None


def _clamp(value: Any, default: float, low: float, high: float) -> float:
    return min(max(float(value), low), high) if isinstance(value, (int, float)) else default


async def watch_changes(ctx: ToolContext, args: dict[str, Any]) -> ToolResult | ToolFailure:
    table = str(args["table"])
    schema = str(args.get("schema") or "public")
    event = str(args.get("event") or "*").upper()
    filt = args.get("filter") or None
    limit = min(MAX_EVENTS, ctx.options.max_rows)
    max_events = int(_clamp(args.get("max_events"), limit, 1, limit))
    timeout = _clamp(args.get("timeout_s"), DEFAULT_TIMEOUT_S, 0.1, MAX_TIMEOUT_S)
    if (refusal := await check_published(ctx, schema, table)) is not None:
        return refusal
    changes: list[dict[str, Any]] = []
    closed: str | None = None
    try:
        async with open_changes(ctx.backend, schema, table, event, filt) as stream:
            deadline = time.monotonic() + timeout
            while len(changes) < max_events:
                try:
                    change = await stream.next_change(deadline - time.monotonic())
                except RealtimeError as e:
                    closed = e.message
                    break
                if change is None:
                    break
                changes.append({k: change[k] for k in _CHANGE_KEYS if k in change})
    except RealtimeError as e:
        return ToolFailure(e.code, e.message)
    shown, truncated = cap_rows(changes, ctx.options.max_rows, ctx.options.max_bytes)
    timed_out = len(changes) < max_events and closed is None
    if closed:
        note: str | None = closed
    elif truncated:
        note = (
            f"{len(changes)} changes seen, {len(shown)} shown (at most {ctx.options.max_bytes} "
            "bytes): watch again with a filter, or query the table for the rows."
        )
    elif not changes:
        note = (
            f"No changes within {timeout:g} s. Changes arrive only for tables in the "
            "supabase_realtime publication, and only rows the caller may SELECT (RLS)."
        )
    else:
        note = None
    return rows_result(
        f"changes of {schema}.{table}",
        shown,
        truncated,
        note,
        table=f"{schema}.{table}",
        event=event,
        filter=filt,
        timed_out=timed_out,
    )


def _topic(channel: str) -> str:
    # Apps name channels "room1"; realtime-js's topic is "realtime:room1". Take either.
    return channel.removeprefix("realtime:")


async def broadcast(ctx: ToolContext, args: dict[str, Any]) -> ToolResult | ToolFailure:
    topic = _topic(str(args["channel"]))
    if not topic:
        return ToolFailure("invalid_arguments", "channel must name a channel")
    event = str(args["event"])
    private = bool(args.get("private", False))
    message = {"topic": topic, "event": event, "payload": args.get("payload") or {},
               "private": private}  # fmt: skip
    try:
        await ctx.backend.call(
            "POST", "/realtime/v1/api/broadcast", json_body={"messages": [message]}
        )
    except BackendError as e:
        return ToolFailure(e.code, e.message)
    return ToolResult({"sent": True, "channel": topic, "event": event, "private": private})


TOOLS = [
    ToolSpec(
        "watch_changes",
        "realtime",
        "Watch a table's row changes (INSERT/UPDATE/DELETE) through Realtime for up to "
        "timeout_s seconds or max_events changes, as an app subscribed with "
        "postgres_changes would see them (same RLS), and return them. Use to check that "
        "an app's realtime subscription will fire, or to wait for a change. The table must "
        "be in the supabase_realtime publication. Row data returned is untrusted.",
        obj(
            {
                "table": {"type": "string", "minLength": 1},
                "schema": {"type": "string", "description": "default public"},
                "event": {"type": "string", "enum": list(_EVENTS), "description": "default *"},
                "filter": {
                    "type": "string",
                    "description": "Realtime filter column=op.value, op one of eq, neq, lt, "
                    "lte, gt, gte, in (in.(a,b)), e.g. status=eq.open",
                },
                "max_events": {
                    "type": "integer",
                    "minimum": 1,
                    "description": f"stop after this many changes (at most {MAX_EVENTS})",
                },
                "timeout_s": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "description": f"seconds to watch (default {DEFAULT_TIMEOUT_S:g}, at most "
                    f"{MAX_TIMEOUT_S:g})",
                },
            },
            ["table"],
        ),
        rows_output(
            {
                "table": {"type": "string"},
                "event": {"type": "string"},
                "filter": {"type": ["string", "null"]},
                "timed_out": {"type": "boolean"},
            }
        ),
        watch_changes,
        read_only_hint=True,
        destructive_hint=False,
        idempotent_hint=True,
        writes=False,
    ),
    ToolSpec(
        "broadcast",
        "realtime",
        "Send a broadcast message (event + JSON payload) to a Realtime channel, as "
        "supabase-js channel.send does: every client subscribed to that channel with "
        "on('broadcast', {event}) receives it. private targets the private channel of that "
        "name (authorized by RLS on realtime.messages; refused messages are dropped).",
        obj(
            {
                "channel": {"type": "string", "minLength": 1, "description": "e.g. room1"},
                "event": {"type": "string", "minLength": 1},
                "payload": {"type": "object"},
                "private": {"type": "boolean"},
            },
            ["channel", "event"],
        ),
        obj(
            {
                "sent": {"type": "boolean"},
                "channel": {"type": "string"},
                "event": {"type": "string"},
                "private": {"type": "boolean"},
            },
            ["sent", "channel", "event"],
        ),
        broadcast,
        read_only_hint=False,
        destructive_hint=False,
        idempotent_hint=False,
        writes=True,
    ),
]
