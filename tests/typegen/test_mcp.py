"""`generate_typescript_types` and `generate_python_types` over stdio and HTTP, and the catalog
read in pages through the admin SQL path's caps."""

from __future__ import annotations

import json
from typing import Any

from supalite.mcp.backend import Backend, BackendConfig
from supalite.mcp.tools.development import catalog_fetch
from supalite.typegen import generate
from tests.mcp.conftest import Project, call, fail, http_session, stdio_session
from tests.typegen.conftest import SCHEMAS

TOOLS = {"generate_typescript_types", "generate_python_types"}


async def test_over_stdio(project: Project, ts_source: str, py_source: str, ts_public: str) -> None:
    async with stdio_session(project.root) as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        for name in TOOLS:
            a = tools[name].annotations
            assert a is not None and a.read_only_hint and a.idempotent_hint
            assert not a.destructive_hint
        assert (await call(s, "generate_typescript_types")) == {"types": ts_public}
        got = await call(s, "generate_typescript_types", {"schemas": SCHEMAS})
        assert got == {"types": ts_source}
        result = await s.call_tool("generate_python_types", {"schemas": SCHEMAS})
        assert result.structured_content == {"types": py_source}
        assert result.content[0].text == py_source  # type: ignore[union-attr]
        error = await fail(s, "generate_typescript_types", {"schemas": ["public", "nope"]})
        assert error == "Error invalid_arguments: schema 'nope' does not exist"
        error = await fail(s, "generate_python_types", {"schemas": "public"})
        assert "invalid_arguments" in error


async def test_in_read_only_mode(project: Project, ts_source: str) -> None:
    """Listed and working under the read-only role: the catalog is all it reads."""
    async with stdio_session(project.root, "--read-only") as s:
        names = {t.name for t in (await s.list_tools()).tools}
        assert names >= TOOLS
        got = await call(s, "generate_typescript_types", {"schemas": SCHEMAS})
        assert got == {"types": ts_source}


async def test_over_http(project: Project, ts_source: str, py_source: str) -> None:
    async with http_session(project.url, project.server.service_key) as s:
        got = await call(s, "generate_typescript_types", {"schemas": SCHEMAS})
        assert got == {"types": ts_source}
        got = await call(s, "generate_python_types", {"schemas": SCHEMAS})
        assert got == {"types": py_source}
        error = await fail(s, "generate_python_types", {"schemas": ["nope"]})
        assert "invalid_arguments" in error and "nope" in error


async def test_hidden_from_a_user(project: Project) -> None:
    """Admin SQL reads the whole catalog: not a tool for a session acting as a user."""
    async with http_session(project.url, project.server.anon_key) as s:
        names = {t.name for t in (await s.list_tools()).tools}
    assert names and not TOOLS & names


async def test_pages_cut_short_by_the_byte_cap_still_give_everything(
    project: Project, ts_source: str
) -> None:
    backend = Backend(BackendConfig(url=project.url, service_key=project.server.service_key))
    try:
        sizes: list[int] = []
        calls = {"full": 0, "capped": 0}

        def counting(kind: str, max_bytes: int) -> Any:
            inner = catalog_fetch(backend.sql, max_bytes)

            async def fetch(sql: str, params: list[Any]) -> list[dict[str, Any]]:
                calls[kind] += 1
                rows = await inner(sql, params)
                # Measured as /pg measures a row against its byte cap.
                sizes.extend(len(json.dumps(r, separators=(",", ":"))) + 1 for r in rows)
                return rows

            return fetch

        assert await generate("typescript", counting("full", 8 << 20), SCHEMAS) == ts_source
        # Room for the largest catalog row, not for it and another: some page is cut short.
        cap = max(sizes) + 8
        assert await generate("typescript", counting("capped", cap), SCHEMAS) == ts_source
        assert calls["capped"] > calls["full"]
        # A single row over the cap is an error, not a quietly shorter file.
        error = None
        try:
            await generate("typescript", catalog_fetch(backend.sql, 64), SCHEMAS)
        except Exception as e:
            error = str(e)
        assert error == "the catalog is too large to read through the admin SQL path"
    finally:
        await backend.aclose()
