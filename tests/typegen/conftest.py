"""A live supalite whose database has a schema covering every family the type generators map
(schema.sql), and the generated sources, read straight from its database."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from supalite.functions.runtime import find_deno
from supalite.typegen import generate
from tests.mcp.conftest import Project, start_project

SCHEMA = Path(__file__).with_name("schema.sql").read_text()
REPO = Path(__file__).resolve().parents[2]
SCHEMAS = ["public", "other"]


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    p = start_project(tmp_path_factory.mktemp("typegen"))
    try:
        p.script(SCHEMA)
        yield p
    finally:
        p.server.stop()


def generate_direct(db_url: str, lang: str, schemas: list[str]) -> str:
    """The generator over asyncpg, as the CLI runs it (no MCP, no HTTP)."""

    async def run() -> str:
        conn = await asyncpg.connect(db_url)
        try:

            async def fetch(sql: str, params: list[Any]) -> list[dict[str, Any]]:
                return [dict(r) for r in await conn.fetch(sql, *params)]

            return await generate(lang, fetch, schemas)
        finally:
            await conn.close()

    return asyncio.run(run())


@pytest.fixture(scope="session")
def ts_source(project: Project) -> str:
    return generate_direct(project.db_url, "typescript", SCHEMAS)


@pytest.fixture(scope="session")
def ts_public(project: Project) -> str:
    """The MCP tools' default: public only, as the Management API's."""
    return generate_direct(project.db_url, "typescript", ["public"])


@pytest.fixture(scope="session")
def py_source(project: Project) -> str:
    return generate_direct(project.db_url, "python", SCHEMAS)


@pytest.fixture(scope="session")
def deno() -> str:
    path = find_deno(None, REPO)
    assert path, "Deno is not installed: run `make test-deps` (npm install in tests/compat/js)"
    return path
