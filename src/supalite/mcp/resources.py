"""MCP resources: each table's schema and the migration history, read through the admin SQL
path, and subscriptions that turn a table's Realtime changes into
`notifications/resources/updated`.

  supabase://tables/{schema}/{table}   columns, keys, indexes, RLS state, policies (JSON)
  supabase://migrations                supabase_migrations.schema_migrations (JSON)

Admin SQL needs the service key, so a session acting as a user lists no resources.  A
subscription is one Realtime channel held for the MCP session, so it needs a session that
lives between requests: `resource_handlers(..., subscriptions=True)` only where there is one
(stdio; the `/mcp` HTTP endpoint is stateless), and the SDK advertises `resources.subscribe`
exactly when the handler is there.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote, unquote

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.session import ServerSession
from mcp.shared.exceptions import MCPError

from supalite.mcp.tools import ToolContext, ToolFailure
from supalite.mcp.tools.database import (
    describe_table,
    list_migrations,
    list_schemas,
    list_tables,
)
from supalite.mcp.tools.realtime import RealtimeError, check_published, open_changes

log = logging.getLogger("supalite.mcp")

MIGRATIONS_URI = "supabase://migrations"
TABLES_PREFIX = "supabase://tables/"
TABLE_TEMPLATE = TABLES_PREFIX + "{schema}/{table}"
MAX_LISTED = 200  # table resources listed at most; the template reaches the others
RESOURCE_NOT_FOUND = -32002  # the MCP specification's code for an unknown resource
_JSON = "application/json"
_IDLE_S = 3600.0  # a subscription waits this long per read; heartbeats keep the socket alive

# This request's ToolContext (the project as the session's caller sees it).
CtxFor = Callable[[ServerRequestContext[Any]], Awaitable[ToolContext]]


def table_uri(schema: str, table: str) -> str:
    return f"{TABLES_PREFIX}{quote(schema, safe='')}/{quote(table, safe='')}"


def parse_table_uri(uri: str) -> tuple[str, str] | None:
    if not uri.startswith(TABLES_PREFIX):
        return None
    parts = uri[len(TABLES_PREFIX) :].split("/")
    if len(parts) != 2 or not all(parts):
        return None
    return unquote(parts[0]), unquote(parts[1])


def _error(code: int, f: ToolFailure) -> MCPError:
    return MCPError(code, f.text())


class Subscriptions:
    """One MCP session's resource subscriptions: a task per URI holding a Realtime channel
    and forwarding each change as `notifications/resources/updated`."""

    def __init__(self) -> None:
        self.tasks: dict[str, asyncio.Task[None]] = {}

    async def start(
        self, uri: str, ctx: ToolContext, schema: str, table: str, session: ServerSession
    ) -> None:
        """Subscribed once the server has confirmed the channel; RealtimeError if it cannot."""
        if uri in self.tasks:
            return
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(
            self._forward(uri, ctx, schema, table, session, ready), name=f"mcp-subscription {uri}"
        )
        self.tasks[uri] = task
        await ready

    async def _forward(
        self,
        uri: str,
        ctx: ToolContext,
        schema: str,
        table: str,
        session: ServerSession,
        ready: asyncio.Future[None],
    ) -> None:
        try:
            async with open_changes(ctx.backend, schema, table) as stream:
                ready.set_result(None)
                while True:
                    if await stream.next_change(_IDLE_S) is not None:
                        await session.send_resource_updated(uri)
        except Exception as e:  # the channel or the MCP session is gone: the task ends
            if not ready.done():
                ready.set_exception(e)
            else:
                log.warning("subscription to %s ended: %s", uri, e)
        finally:
            if not ready.done():
                ready.cancel()
            if self.tasks.get(uri) is asyncio.current_task():
                del self.tasks[uri]

    async def stop(self, uri: str) -> None:
        task = self.tasks.pop(uri, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def aclose(self) -> None:
        for uri in list(self.tasks):
            await self.stop(uri)


@asynccontextmanager
async def session_subscriptions(server: Server[Any]) -> AsyncIterator[Subscriptions]:
    """The server's lifespan: one per `Server.run`, i.e. per stdio session; every
    subscription stops when it ends."""
    subs = Subscriptions()
    try:
        yield subs
    finally:
        await subs.aclose()


def resource_handlers(ctx_for: CtxFor, *, subscriptions: bool) -> dict[str, Any]:
    """The `Server(...)` keyword arguments that serve the resources (and, with
    `subscriptions`, resource subscriptions and the lifespan that holds them)."""

    async def list_resources(
        rctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        ctx = await ctx_for(rctx)
        if ctx.backend.user_mode:
            return types.ListResourcesResult(resources=[])
        schemas = await list_schemas(ctx, {})
        if isinstance(schemas, ToolFailure):
            if schemas.code == "no_admin_sql":  # a Supabase project without DATABASE_URL
                return types.ListResourcesResult(resources=[])
            raise _error(types.INTERNAL_ERROR, schemas)
        names = [s["name"] for s in schemas.structured["schemas"] if not s["system"]]
        tables = await list_tables(ctx, {"schemas": names}) if names else None
        if isinstance(tables, ToolFailure):
            raise _error(types.INTERNAL_ERROR, tables)
        found = tables.structured["tables"] if tables else []
        out = [
            types.Resource(
                name="migrations",
                title="Applied migrations",
                uri=MIGRATIONS_URI,
                description="Migrations recorded in supabase_migrations.schema_migrations.",
                mime_type=_JSON,
            )
        ]
        for t in found[:MAX_LISTED]:
            out.append(
                types.Resource(
                    name=f"{t['schema']}.{t['name']}",
                    uri=table_uri(t["schema"], t["name"]),
                    description=f"Table {t['schema']}.{t['name']}: columns, keys, indexes, RLS "
                    "state and policies."
                    + (" Subscribe to be notified when its rows change." if subscriptions else ""),
                    mime_type=_JSON,
                )
            )
        return types.ListResourcesResult(resources=out)

    async def list_templates(
        rctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        if (await ctx_for(rctx)).backend.user_mode:
            return types.ListResourceTemplatesResult(resource_templates=[])
        template = types.ResourceTemplate(
            name="table",
            uri_template=TABLE_TEMPLATE,
            description="Any table's schema: columns, keys, indexes, RLS state and policies.",
            mime_type=_JSON,
        )
        return types.ListResourceTemplatesResult(resource_templates=[template])

    async def service_ctx(rctx: ServerRequestContext[Any]) -> ToolContext:
        ctx = await ctx_for(rctx)
        if ctx.backend.user_mode:
            raise MCPError(
                types.INVALID_REQUEST,
                "resources are read with admin SQL (the service key): not available when "
                "acting as a user",
            )
        return ctx

    async def read_resource(
        rctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        ctx, uri = await service_ctx(rctx), params.uri
        if uri == MIGRATIONS_URI:
            got = await list_migrations(ctx, {})
        elif (names := parse_table_uri(uri)) is not None:
            got = await describe_table(ctx, {"schema": names[0], "table": names[1]})
        else:
            raise MCPError(RESOURCE_NOT_FOUND, f"no resource {uri}", {"uri": uri})
        if isinstance(got, ToolFailure):
            code = RESOURCE_NOT_FOUND if got.code == "not_found" else types.INTERNAL_ERROR
            raise _error(code, got)
        text = json.dumps(got.structured, default=str, indent=1, ensure_ascii=False)
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=uri, mime_type=_JSON, text=text)]
        )

    handlers: dict[str, Any] = {
        "on_list_resources": list_resources,
        "on_list_resource_templates": list_templates,
        "on_read_resource": read_resource,
    }
    if not subscriptions:
        return handlers

    async def subscribe(
        rctx: ServerRequestContext[Any], params: types.SubscribeRequestParams
    ) -> types.EmptyResult:
        ctx, uri = await service_ctx(rctx), params.uri
        names = parse_table_uri(uri)
        if names is None:
            raise MCPError(
                types.INVALID_PARAMS, f"only table resources can be subscribed to, not {uri}"
            )
        if (refusal := await check_published(ctx, *names)) is not None:
            raise _error(types.INVALID_PARAMS, refusal)
        subs: Subscriptions = rctx.lifespan_context
        try:
            await subs.start(uri, ctx, names[0], names[1], rctx.session)
        except RealtimeError as e:
            raise MCPError(types.INTERNAL_ERROR, f"Error {e.code}: {e.message}") from e
        return types.EmptyResult()

    async def unsubscribe(
        rctx: ServerRequestContext[Any], params: types.UnsubscribeRequestParams
    ) -> types.EmptyResult:
        subs: Subscriptions = rctx.lifespan_context
        await subs.stop(params.uri)
        return types.EmptyResult()

    return {
        **handlers,
        "on_subscribe_resource": subscribe,
        "on_unsubscribe_resource": unsubscribe,
        "lifespan": session_subscriptions,
    }
