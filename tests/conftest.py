"""Shared fixtures: a real embedded PostgreSQL cluster per test session, live supalite
servers as subprocesses, and an independent "external" PostgreSQL for DATABASE_URL tests."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from supalite.db.bootstrap import bootstrap
from supalite.db.embedded import EmbeddedPostgres
from supalite.keys import project_keys
from tests.helpers import ExternalPostgres, free_port

TEST_SECRET = "test-secret-with-at-least-32-characters-0123456789"


@pytest.fixture(scope="session")
def embedded_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """One embedded cluster for the whole session, bootstrapped once."""
    data = tmp_path_factory.mktemp("embedded")
    pg = EmbeddedPostgres(data, free_port())
    pg.init()
    pg.start()
    asyncio.run(bootstrap(pg.local_url(), TEST_SECRET))
    yield pg
    pg.stop()


@pytest.fixture(scope="session")
def keys():  # type: ignore[no-untyped-def]
    return project_keys(TEST_SECRET)


@pytest.fixture
async def admin_conn(embedded_pg: EmbeddedPostgres) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(embedded_pg.local_url())
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def external_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExternalPostgres]:
    """The system PostgreSQL, run as a separate server and reached only by its URL."""
    ext = ExternalPostgres(tmp_path_factory.mktemp("external"), free_port())
    ext.start()
    yield ext
    ext.stop()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An initialised project folder with its own free database port."""
    from supalite.cli import main

    assert main(["init", "--workdir", str(tmp_path)]) == 0
    cfg = tmp_path / "supabase" / "config.toml"
    text = cfg.read_text().replace("port = 54322", f"port = {free_port()}")
    cfg.write_text(text.replace("port = 54321", f"port = {free_port()}"))
    return tmp_path


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests decide their configuration; the developer's environment must not leak in."""
    for name in list(os.environ):
        if name in ("DATABASE_URL", "JWT_SECRET", "PORT", "SITE_URL") or name.startswith(
            ("SUPALITE_", "PGRST_", "SMTP_")
        ):
            monkeypatch.delenv(name, raising=False)
