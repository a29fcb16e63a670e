"""MCP resources (table schemas, migrations) over stdio and HTTP, and resource subscriptions
over stdio: a change to a subscribed table reaches the client as
`notifications/resources/updated`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from mcp import ClientSession
from supalite.mcp.backend import Backend, BackendConfig
from supalite.mcp.resources import resource_handlers, session_subscriptions
from supalite.mcp.safety import Confirmations
from supalite.mcp.tools import Options, ToolContext
from tests.mcp.conftest import Project, call, http_session, stdio_session

TABLES = """
create table public.res_watched (id int primary key, label text);
alter publication supabase_realtime add table public.res_watched;
create table public.res_other (id int primary key);
alter publication supabase_realtime add table public.res_other;
create table public."Odd/Name" (id int primary key);
"""


# resources/subscribe is the handshake-era (2025-11-25) method this server serves; the SDK
# warns that the 2026-07-28 protocol replaces it with subscriptions/listen.
pytestmark = pytest.mark.filterwarnings("ignore:resources/(un)?subscribe is removed")


@pytest.fixture(scope="module")
def tables(live: Project) -> Iterator[Project]:
    live.script(TABLES)
    yield live


async def read_json(s: ClientSession, uri: str) -> Any:
    result = await s.read_resource(uri)
    [content] = result.contents
    assert isinstance(content, types.TextResourceContents)
    assert content.uri == uri and content.mime_type == "application/json"
    return json.loads(content.text)


async def check_resources(s: ClientSession) -> None:
    listed = {r.uri: r for r in (await s.list_resources()).resources}
    assert "supabase://migrations" in listed
    assert "supabase://tables/public/todos" in listed
    assert "supabase://tables/public/Odd%2FName" in listed
    assert not any("/auth/" in uri or "/storage/" in uri for uri in listed)  # system schemas
    assert listed["supabase://tables/public/todos"].name == "public.todos"

    todos = await read_json(s, "supabase://tables/public/todos")
    assert todos["name"] == "todos" and todos["rls_enabled"] is True
    assert [c["name"] for c in todos["columns"]] == ["id", "title", "done", "priority"]
    assert any(c["type"] == "primary key" for c in todos["constraints"])
    assert "policies" in todos
    odd = await read_json(s, "supabase://tables/public/Odd%2FName")
    assert odd["name"] == "Odd/Name"

    migrations = await read_json(s, "supabase://migrations")
    assert "res_probe" in [m["name"] for m in migrations["migrations"]]

    [template] = (await s.list_resource_templates()).resource_templates
    assert template.uri_template == "supabase://tables/{schema}/{table}"

    with pytest.raises(MCPError) as e:
        await s.read_resource("supabase://tables/public/no_such_table")
    assert e.value.code == -32002 and "no table or view public.no_such_table" in e.value.message
    with pytest.raises(MCPError) as e:
        await s.read_resource("supabase://elsewhere")
    assert e.value.code == -32002


async def test_resources_over_stdio(tables: Project) -> None:
    async with stdio_session(tables.root) as s:
        await call(s, "apply_migration", {"name": "res_probe",
                                          "query": "create table res_probe (id int)"})  # fmt: skip
        await check_resources(s)
        init = s.initialize_result
        assert init is not None and init.capabilities.resources is not None
        assert init.capabilities.resources.subscribe is True


async def test_resources_over_http(tables: Project) -> None:
    async with http_session(tables.url, tables.server.service_key) as s:
        await check_resources(s)
        init = s.initialize_result
        # Stateless HTTP keeps no session to hold a subscription: not offered.
        assert init is not None and init.capabilities.resources is not None
        assert not init.capabilities.resources.subscribe
        with pytest.raises(MCPError):
            await s.subscribe_resource("supabase://tables/public/res_watched")


class Updates:
    """The `notifications/resources/updated` a client receives, by URI."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.arrived = asyncio.Event()

    async def __call__(self, message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            self.seen.append(message.params.uri)
            self.arrived.set()

    async def wait_for(self, uri: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while uri not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"no update for {uri}; got {self.seen}"
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), left)


async def test_subscribe_to_a_table_over_stdio(tables: Project) -> None:
    watched = "supabase://tables/public/res_watched"
    other = "supabase://tables/public/res_other"
    updates = Updates()
    async with stdio_session(tables.root, message_handler=updates) as s:
        await s.subscribe_resource(watched)
        await s.subscribe_resource(watched)  # again: still one subscription
        tables.script("insert into res_watched values (1, 'one')")
        await updates.wait_for(watched)
        assert updates.seen == [watched]

        await s.unsubscribe_resource(watched)
        await s.subscribe_resource(other)
        # A change to the unsubscribed table, then one to the subscribed one: only the
        # second is announced (the first, committed first, would be announced first).
        tables.script("insert into res_watched values (2, 'two')")
        tables.script("insert into res_other values (1)")
        await updates.wait_for(other)
        assert updates.seen == [watched, other]

        with pytest.raises(MCPError) as e:
            await s.subscribe_resource("supabase://tables/public/todos")
        assert "alter publication supabase_realtime add table" in e.value.message
        with pytest.raises(MCPError) as e:
            await s.subscribe_resource("supabase://migrations")
        assert "only table resources" in e.value.message
        with pytest.raises(MCPError) as e:
            await s.subscribe_resource("supabase://tables/public/no_such_table")
        assert "not_found" in e.value.message


async def test_no_resources_for_a_user(tables: Project) -> None:
    """Resources are read with admin SQL: a session acting as a user has none."""
    backend = Backend(
        BackendConfig(
            url=tables.url, service_key=tables.server.service_key, anon_key=tables.server.anon_key
        )
    )
    now = int(time.time())
    token = jwt.encode(
        {"sub": "aaaaaaaa-1111-1111-1111-111111111111", "role": "authenticated",
         "aud": "authenticated", "iat": now, "exp": now + 3600},
        tables.server.info["JWT secret"], algorithm="HS256",
    )  # fmt: skip
    try:
        user = ToolContext(backend.as_user(token), Options(), Confirmations())
        service = ToolContext(backend, Options(), Confirmations())

        def handlers(ctx: ToolContext) -> dict[str, Any]:
            async def ctx_for(rctx: Any) -> ToolContext:
                return ctx

            return resource_handlers(ctx_for, subscriptions=True)

        rctx: Any = None  # the handlers read the request only through ctx_for
        as_user, as_service = handlers(user), handlers(service)
        assert (await as_user["on_list_resources"](rctx, None)).resources == []
        assert (await as_service["on_list_resources"](rctx, None)).resources != []
        read = types.ReadResourceRequestParams(uri="supabase://migrations")
        with pytest.raises(MCPError) as e:
            await as_user["on_read_resource"](rctx, read)
        assert "not available when acting as a user" in e.value.message
        assert (await as_service["on_read_resource"](rctx, read)).contents
    finally:
        await backend.aclose()


async def test_subscriptions_end_with_the_session(tables: Project) -> None:
    """The server's lifespan is the stdio session: leaving it ends every subscription."""
    backend = Backend(BackendConfig(url=tables.url, service_key=tables.server.service_key))
    uri = "supabase://tables/public/res_other"
    try:
        ctx = ToolContext(backend, Options(), Confirmations())
        async with session_subscriptions(None) as subs:  # type: ignore[arg-type]
            # No change happens, so the session (None here) is never written to.
            await subs.start(uri, ctx, "public", "res_other", None)  # type: ignore[arg-type]
            task = subs.tasks[uri]
            assert not task.done()
        assert task.done() and subs.tasks == {}
    finally:
        await backend.aclose()
