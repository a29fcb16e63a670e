"""Against the real pg_cron (Debian's postgresql-15-cron, when installed): bootstrap uses the
extension instead of the emulation, the migration runs unchanged, and the emulation's grammar
accepts exactly what the real parser accepts."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings

from supalite.config import CronSettings
from supalite.cron import sql
from supalite.cron.schedule import is_valid
from supalite.cron.scheduler import CronScheduler
from supalite.db.bootstrap import bootstrap
from tests.conftest import TEST_SECRET
from tests.cron.test_live import MIGRATION
from tests.cron.test_schedule import INVALID, VALID
from tests.cron.test_sql_api import schedule_like
from tests.helpers import ExternalPostgres, _pg_bindir, free_port


def _have_pg_cron() -> bool:
    try:
        return (_pg_bindir().parent / "lib" / "pg_cron.so").exists()
    except (OSError, IndexError):  # no system PostgreSQL at all
        return False


pytestmark = pytest.mark.skipif(
    not _have_pg_cron(), reason="pg_cron is not installed (apt-get install postgresql-15-cron)"
)


@pytest.fixture(scope="module")
def pg_cron_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExternalPostgres]:
    """A system PostgreSQL with pg_cron preloaded, as a managed Supabase database has it."""
    ext = ExternalPostgres(tmp_path_factory.mktemp("pgcron"), free_port())
    ext.start()

    async def preload() -> None:
        conn = await asyncpg.connect(ext.url)
        try:
            await conn.execute("alter system set shared_preload_libraries = 'pg_cron'")
        finally:
            await conn.close()

    asyncio.run(preload())
    ext._run(
        str(ext.bindir / "pg_ctl"), "-D", str(ext.pgdata), "-l", str(ext.base / "log"),
        "-w", "-m", "fast", "restart",
    )  # fmt: skip
    try:
        asyncio.run(bootstrap(ext.url, TEST_SECRET))
    except BaseException:
        ext.stop()
        raise
    yield ext
    ext.stop()


@pytest.fixture
async def real(pg_cron_server: ExternalPostgres) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(pg_cron_server.url)
    try:
        yield conn
    finally:
        await conn.close()


async def test_bootstrap_uses_the_extension(real: asyncpg.Connection) -> None:
    assert await real.fetchval("select extversion from pg_extension where extname = 'pg_cron'")
    assert await real.fetchval(sql.EMULATION_IN_USE) is False
    assert await real.fetchval("select to_regclass('_supalite.cron_claims')") is None


async def test_supalites_scheduler_stays_off(
    pg_cron_server: ExternalPostgres, real: asyncpg.Connection
) -> None:
    pool = await asyncpg.create_pool(pg_cron_server.url, min_size=1, max_size=2)
    try:
        scheduler = CronScheduler(pg_cron_server.url, pool, CronSettings())
        assert await scheduler.start() is False
        await scheduler.stop()
    finally:
        await pool.close()


async def test_the_migration_runs_unchanged_on_pg_cron(real: asyncpg.Connection) -> None:
    async with real.transaction():
        await real.execute(MIGRATION)
    rows = await real.fetch("select jobname, schedule from cron.job order by jobname")
    assert [tuple(r) for r in rows] == [
        ("cleanup-dormant-sessions", "0 0 * * *"),
        ("cleanup-transient-sessions", "*/5 * * * *"),
    ]
    await real.execute("select cron.unschedule(jobid) from cron.job")


async def test_another_database_on_that_server_gets_the_emulation(
    pg_cron_server: ExternalPostgres, real: asyncpg.Connection
) -> None:
    # pg_cron serves only `cron.database_name` (postgres); elsewhere supalite runs the jobs.
    await real.execute("create database cron_elsewhere")
    try:
        url = pg_cron_server.url.rsplit("/", 1)[0] + "/cron_elsewhere"
        await bootstrap(url, TEST_SECRET)
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval(sql.EMULATION_IN_USE) is True
        finally:
            await conn.close()
    finally:
        await real.execute("drop database cron_elsewhere with (force)")


def _newer_than_1_4(text: str) -> bool:
    """Where pg_cron 1.4 (Debian bookworm's) and 1.6 (Supabase's, which the emulation follows)
    differ: 'N seconds' came in 1.5, '$' in 1.6, and 1.5.1 rejects a step larger than its
    field's maximum (1.4 takes `*/60`)."""
    steps = [int(n) for n in re.findall(r"/([0-9]{1,9})", text)]
    return "second" in text.lower() or "$" in text or any(n > 7 for n in steps)


async def real_accepts(conn: asyncpg.Connection, text: str) -> bool:
    try:
        async with conn.transaction():
            await conn.fetchval("select cron.schedule($1, 'select 1')", text)
            raise _Rollback
    except _Rollback:
        return True
    except asyncpg.PostgresError as e:
        assert e.args[0] == f"invalid schedule: {text}"
        return False


class _Rollback(Exception):
    pass


@pytest.mark.parametrize("text", [t for t in VALID + INVALID if not _newer_than_1_4(t)])
async def test_same_verdict_as_pg_cron_on_the_corpus(real: asyncpg.Connection, text: str) -> None:
    assert await real_accepts(real, text) is is_valid(text)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=schedule_like)
async def test_same_verdict_as_pg_cron(real: asyncpg.Connection, text: str) -> None:
    if _newer_than_1_4(text):
        return
    assert await real_accepts(real, text) is is_valid(text)
