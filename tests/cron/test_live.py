"""`supalite start` runs cron jobs: a migration that schedules them applies unchanged, jobs run
and are recorded, and several supalite processes on one database run each job once per time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.conftest import TEST_SECRET
from tests.helpers import ExternalPostgres, LiveServer, free_port, supalite

# As the MCP session store's migration (from mcp-ts) writes it: the extension statements too.
MIGRATION = """
create table if not exists public.mcp_sessions (
  id text primary key,
  status text not null,
  expires_at timestamptz,
  updated_at timestamptz not null default now()
);

CREATE EXTENSION IF NOT EXISTS pg_cron;

SELECT cron.schedule(
    'cleanup-transient-sessions',
    '*/5 * * * *',
    $$DELETE FROM public.mcp_sessions WHERE expires_at IS NOT NULL AND expires_at < now() AND status <> 'active';$$
);

SELECT cron.schedule(
    'cleanup-dormant-sessions',
    '0 0 * * *',
    $$DELETE FROM public.mcp_sessions WHERE status = 'active' AND updated_at < now() - interval '30 days';$$
);

COMMENT ON EXTENSION pg_cron IS 'Automated Session Lifecycle Management.';
"""  # noqa: E501


def sql(url: str, statement: str, *args: Any) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url)
        try:
            return list(await conn.fetch(statement, *args))
        finally:
            await conn.close()

    return asyncio.run(run())


def wait_until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.2)


def count_runs(url: str, jobname: str, status: str = "succeeded") -> int:
    rows = sql(
        url,
        "select count(*) as n from cron.job_run_details d join cron.job j using (jobid)"
        " where j.jobname = $1 and d.status = $2",
        jobname,
        status,
    )
    return int(rows[0]["n"])


def new_project(root: Path) -> Path:
    assert supalite("init", cwd=root).returncode == 0
    cfg = root / "supabase" / "config.toml"
    text = cfg.read_text().replace("port = 54321", f"port = {free_port()}")
    cfg.write_text(text.replace("port = 54322", f"port = {free_port()}"))
    return root


@pytest.fixture(scope="module")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = new_project(tmp_path_factory.mktemp("cron-live"))
    migrations = root / "supabase" / "migrations"
    migrations.mkdir(exist_ok=True)
    (migrations / "20250101000000_mcp_sessions.sql").write_text(MIGRATION)
    server = LiveServer(root).start()
    yield server
    server.stop()


def test_the_migration_runs_unchanged(embedded_server: LiveServer) -> None:
    url = embedded_server.info["DB URL"]
    rows = sql(url, "select jobname, schedule, username from cron.job order by jobname")
    assert [tuple(r) for r in rows] == [
        ("cleanup-dormant-sessions", "0 0 * * *", "postgres"),
        ("cleanup-transient-sessions", "*/5 * * * *", "postgres"),
    ]


def test_a_live_server_runs_jobs_and_records_them(embedded_server: LiveServer) -> None:
    url = embedded_server.info["DB URL"]
    sql(url, "create table if not exists live_hits (slot text primary key)")
    sql(
        url,
        "select cron.schedule('live-hit', '1 seconds', $$insert into live_hits"
        " values (current_setting('supalite.cron_scheduled_at'))$$)",
    )
    sql(url, "select cron.schedule('live-bad', '2 seconds', 'select 1/0')")
    try:
        wait_until(lambda: count_runs(url, "live-hit") >= 3)
        wait_until(lambda: count_runs(url, "live-bad", "failed") >= 1)
    finally:
        sql(url, "select cron.unschedule('live-hit')")
        sql(url, "select cron.unschedule('live-bad')")
    bad = sql(
        url,
        "select return_message from cron.job_run_details where command = 'select 1/0' limit 1",
    )
    assert bad[0]["return_message"] == "ERROR:  division by zero\n"
    assert count_runs(url, "live-hit", "failed") == 0


@pytest.fixture(scope="module")
def shared_db(external_pg: ExternalPostgres) -> Iterator[str]:
    sql(external_pg.url, "create database cron_shared")
    yield external_pg.url.rsplit("/", 1)[0] + "/cron_shared"
    sql(external_pg.url, "drop database cron_shared with (force)")


def test_two_processes_share_the_jobs(
    tmp_path_factory: pytest.TempPathFactory, shared_db: str
) -> None:
    env = {"DATABASE_URL": shared_db, "JWT_SECRET": TEST_SECRET}
    first = LiveServer(new_project(tmp_path_factory.mktemp("cron-a")), env=env).start()
    try:
        second = LiveServer(new_project(tmp_path_factory.mktemp("cron-b")), env=env).start()
        try:
            wait_until(lambda: schedulers(shared_db) == 2)
            sql(shared_db, "create table shared_hits (slot text primary key, pid int)")
            sql(
                shared_db,
                "select cron.schedule('shared', '1 seconds', $$insert into shared_hits values"
                " (current_setting('supalite.cron_scheduled_at'), pg_backend_pid())$$)",
            )
            wait_until(lambda: count_runs(shared_db, "shared") >= 6)
        finally:
            second.stop()
        # The survivor carries on alone.
        before = count_runs(shared_db, "shared")
        wait_until(lambda: count_runs(shared_db, "shared") >= before + 3)
        sql(shared_db, "select cron.unschedule('shared')")
    finally:
        first.stop()
    # Had two processes run the same scheduled time, the second insert would have failed.
    assert count_runs(shared_db, "shared", "failed") == 0
    hits = sql(shared_db, "select count(*) as n from shared_hits")[0]["n"]
    claims = sql(
        shared_db,
        "select count(*) as n from _supalite.cron_claims where jobid in"
        " (select jobid from cron.job_run_details where command like '%shared_hits%')",
    )[0]["n"]
    runs = sql(
        shared_db,
        "select count(*) as n from cron.job_run_details where command like '%shared_hits%'",
    )[0]["n"]
    assert hits == runs == claims


def schedulers(url: str) -> int:
    rows = sql(
        url,
        "select count(*) as n from pg_stat_activity"
        " where application_name = 'supalite cron' and datname = current_database()",
    )
    return int(rows[0]["n"])
