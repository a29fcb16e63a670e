"""The MCP prompts: listed with their arguments, rendered with the caller's values, and bad
arguments refused with an MCP error (over stdio and HTTP)."""

from __future__ import annotations

import pytest
from mcp.shared.exceptions import MCPError

from mcp import ClientSession
from tests.mcp.conftest import Project, http_session, stdio_session


async def check_prompts(s: ClientSession) -> None:
    listed = {p.name: p for p in (await s.list_prompts()).prompts}
    assert set(listed) == {"design_table_with_rls", "debug_rls_denial"}
    args = {a.name: a.required for a in listed["design_table_with_rls"].arguments or []}
    assert args == {"table": True, "purpose": None}

    got = await s.get_prompt("design_table_with_rls", {"table": "invoices", "purpose": "bills"})
    text = got.messages[0].content.text  # type: ignore[union-attr]
    assert "public.invoices" in text and "bills" in text
    assert "(select auth.uid())" in text and "apply_migration" in text
    got = await s.get_prompt("debug_rls_denial", {"table": "invoices"})
    assert "describe_table" in got.messages[0].content.text  # type: ignore[union-attr]

    with pytest.raises(MCPError, match="needs the argument 'table'"):
        await s.get_prompt("design_table_with_rls", {})
    with pytest.raises(MCPError, match="plain SQL identifier"):
        await s.get_prompt("debug_rls_denial", {"table": "x; drop table y"})
    with pytest.raises(MCPError, match="no prompt"):
        await s.get_prompt("nope", {})


async def test_prompts_over_stdio(live: Project) -> None:
    async with stdio_session(live.root) as s:
        await check_prompts(s)


async def test_prompts_over_http(live: Project) -> None:
    async with http_session(live.url, live.server.service_key) as s:
        await check_prompts(s)
