"""The scheduler against a real database: runs, records, shares the work, stops cleanly.

Schedulers run in this process (each with its own pool and connections, sharing nothing but the
database), with `'N seconds'` schedules so that the tests take seconds, not minutes."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import asyncpg
import pytest

from supalite.config import CronSettings
from supalite.cron.schedule import CronSchedule, IntervalSchedule, RebootSchedule, parse
from supalite.cron.scheduler import CronScheduler, Job, due_slot, error_message, run_message
from tests.cron.conftest import CronDb


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the scheduler")
        await asyncio.sleep(0.1)


@asynccontextmanager
async def scheduler(
    cron_db: CronDb, settings: CronSettings | None = None, grace: float = 5.0
) -> AsyncIterator[CronScheduler]:
    pool = await asyncpg.create_pool(cron_db.url, min_size=1, max_size=3)
    s = CronScheduler(cron_db.url, pool, settings or CronSettings(), shutdown_grace=grace)
    try:
        assert await s.start() is True
        yield s
    finally:
        await s.stop()
        await pool.close()


async def runs(
    db: asyncpg.Connection, jobid: int, status: str | None = None
) -> list[asyncpg.Record]:
    return list(
        await db.fetch(
            "select * from cron.job_run_details where jobid = $1"
            " and ($2::text is null or status = $2) order by runid",
            jobid,
            status,
        )
    )


@pytest.fixture(autouse=True)
async def _no_jobs_left(db: asyncpg.Connection) -> AsyncIterator[None]:
    """Each test starts from an empty job table (the database is shared by the module)."""
    await db.execute("delete from cron.job")
    yield
    await db.execute("delete from cron.job")


# ---------------------------------------------------------------------------- pure parts


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_due_slot() -> None:
    every5 = parse("*/5 * * * *")
    assert isinstance(every5, CronSchedule)
    assert due_slot(every5, at(2026, 1, 1, 0, 4, 59), at(2026, 1, 1, 0, 5, 0, 3)) == at(
        2026, 1, 1, 0, 5
    )
    assert due_slot(every5, at(2026, 1, 1, 0, 5, 0, 3), at(2026, 1, 1, 0, 5, 59)) is None
    # A late tick still runs the latest time that fell due, once.
    assert due_slot(every5, at(2026, 1, 1, 0, 4), at(2026, 1, 1, 0, 11, 30)) == at(
        2026, 1, 1, 0, 10
    )
    # ... but not what fell due long ago.
    assert due_slot(parse("7 * * * *"), at(2026, 1, 1, 0, 4), at(2026, 1, 1, 0, 30)) is None
    two = IntervalSchedule(2)
    assert due_slot(two, at(2026, 1, 1, 0, 0, 1), at(2026, 1, 1, 0, 0, 2, 500)) == at(
        2026, 1, 1, 0, 0, 2
    )
    assert due_slot(two, at(2026, 1, 1, 0, 0, 2, 500), at(2026, 1, 1, 0, 0, 3, 900)) is None
    assert due_slot(RebootSchedule(), at(2026, 1, 1), at(2027, 1, 1)) is None


def test_messages_as_pg_cron_records_them() -> None:
    assert run_message("DELETE 3") == "DELETE 3"
    assert run_message("SELECT 1") == "1 row"
    assert run_message("SELECT 0") == "0 rows"
    assert run_message("SELECT 12") == "12 rows"
    assert run_message("") == "0 rows"
    err = asyncpg.UndefinedTableError('relation "nope" does not exist')
    assert error_message(err) == 'ERROR:  relation "nope" does not exist\n'


# ---------------------------------------------------------------------------- running jobs


async def test_runs_a_seconds_job_and_records_it(cron_db: CronDb, db: asyncpg.Connection) -> None:
    await db.execute("create table if not exists hits (id serial, slot text)")
    await db.execute("truncate hits")
    async with scheduler(cron_db):
        jobid = await db.fetchval(
            "select cron.schedule('hit', '1 seconds',"
            " $$insert into hits (slot) values (current_setting('supalite.cron_scheduled_at'))$$)"
        )
        await wait_for(lambda: _count(db, jobid, "succeeded", 2))
        await db.execute("select cron.unschedule($1::bigint)", jobid)
    done = await runs(db, jobid)
    assert all(r["status"] == "succeeded" for r in done)
    first = done[0]
    assert first["return_message"] == "INSERT 0 1"
    assert first["username"] == "postgres" and first["database"] == cron_db.name
    assert "insert into hits" in first["command"]
    assert isinstance(first["job_pid"], int) and first["job_pid"] > 0
    assert first["start_time"] <= first["end_time"]
    slots = [r["slot"] for r in await db.fetch("select slot from hits order by id")]
    assert len(slots) == len(done) and len(set(slots)) == len(slots)


async def _count(db: asyncpg.Connection, jobid: int, status: str, n: int) -> bool:
    return len(await runs(db, jobid, status)) >= n


async def test_failure_is_recorded_and_others_keep_running(
    cron_db: CronDb, db: asyncpg.Connection
) -> None:
    async with scheduler(cron_db):
        bad = await db.fetchval("select cron.schedule('bad', '1 seconds', 'select * from nope')")
        good = await db.fetchval("select cron.schedule('good', '1 seconds', 'select 1')")
        await wait_for(lambda: _count(db, good, "succeeded", 3))
        await wait_for(lambda: _count(db, bad, "failed", 2))
    failed = await runs(db, bad)
    assert {r["status"] for r in failed} == {"failed"}
    assert failed[0]["return_message"] == 'ERROR:  relation "nope" does not exist\n'
    assert (await runs(db, good))[0]["return_message"] == "1 row"


async def test_an_unscheduled_job_stops(cron_db: CronDb, db: asyncpg.Connection) -> None:
    async with scheduler(cron_db):
        gone = await db.fetchval("select cron.schedule('gone', '1 seconds', 'select 1')")
        stays = await db.fetchval("select cron.schedule('stays', '1 seconds', 'select 2')")
        await wait_for(lambda: _count(db, gone, "succeeded", 1))
        await db.execute("select cron.unschedule('gone')")
        # A run is claimed and recorded in one statement that requires the job to exist, so
        # nothing can start after unschedule() has returned.
        n = len(await runs(db, gone))
        mark = await db.fetchval("select max(runid) from cron.job_run_details")
        await wait_for(
            lambda: _later_runs(db, stays, mark, 3),
        )
        assert len(await runs(db, gone)) == n
        # Deactivated jobs stop the same way.
        await db.execute("select cron.alter_job($1, active := false)", stays)
        n = len(await runs(db, stays))
        again = await db.fetchval("select cron.schedule('again', '1 seconds', 'select 3')")
        await wait_for(lambda: _count(db, again, "succeeded", 2))
        assert len(await runs(db, stays)) == n


async def _later_runs(db: asyncpg.Connection, jobid: int, after: int, n: int) -> bool:
    got = await db.fetchval(
        "select count(*) from cron.job_run_details where jobid = $1 and runid > $2", jobid, after
    )
    return bool(got >= n)


async def test_jobs_scheduled_while_running_are_picked_up(
    cron_db: CronDb, db: asyncpg.Connection
) -> None:
    async with scheduler(cron_db):
        # With no jobs the scheduler sleeps towards the next minute; the trigger on cron.job
        # wakes it through its LISTEN connection, so the new job starts within seconds.
        await wait_for(lambda: _listeners(db, 1))
        jobid = await db.fetchval("select cron.schedule('late', '1 seconds', 'select 1')")
        await wait_for(lambda: _count(db, jobid, "succeeded", 1), timeout=10)


async def _listeners(db: asyncpg.Connection, n: int) -> bool:
    got = await db.fetchval(
        "select count(*) from pg_stat_activity"
        " where application_name = 'supalite cron' and datname = current_database()"
    )
    return bool(got == n)


async def test_two_schedulers_run_each_scheduled_time_once(
    cron_db: CronDb, db: asyncpg.Connection
) -> None:
    await db.execute("create table if not exists shared_hits (slot text primary key, pid int)")
    await db.execute("truncate shared_hits")
    async with scheduler(cron_db), scheduler(cron_db):
        await wait_for(lambda: _listeners(db, 2))  # both are live
        jobid = await db.fetchval(
            "select cron.schedule('shared', '1 seconds', $$insert into shared_hits values"
            " (current_setting('supalite.cron_scheduled_at'), pg_backend_pid())$$)"
        )
        await wait_for(lambda: _count(db, jobid, "succeeded", 6), timeout=30)
        await db.execute("select cron.unschedule($1::bigint)", jobid)
    # A second run of the same time would have failed on the primary key.
    assert await runs(db, jobid, "failed") == []
    claims = await db.fetch(
        "select scheduled_at from _supalite.cron_claims where jobid = $1", jobid
    )
    hits = await db.fetchval("select count(*) from shared_hits")
    assert hits == len(claims) == len(await runs(db, jobid))


async def test_a_late_process_does_not_run_a_time_already_run(
    cron_db: CronDb, db: asyncpg.Connection
) -> None:
    # The advisory lock keeps two processes from running a job at the same moment; the claim
    # is what stops a process that comes late, after the first run has ended.  (New Year's
    # midnight: the schedulers' own loops leave this job alone while the test drives it.)
    jobid = await db.fetchval("select cron.schedule('once', '0 0 1 1 *', 'select 1')")
    job = Job(jobid, "0 0 1 1 *", parse("0 0 1 1 *"))
    async with scheduler(cron_db) as first, scheduler(cron_db) as late:
        await first.run_once(job, at(2030, 1, 1))
        await late.run_once(job, at(2030, 1, 1))
        await first.run_once(job, at(2030, 1, 1))
        await late.run_once(job, at(2031, 1, 1))
    assert [r["status"] for r in await runs(db, jobid)] == ["succeeded", "succeeded"]
    claims = await db.fetch(
        "select scheduled_at from _supalite.cron_claims where jobid = $1 order by 1", jobid
    )
    assert [r["scheduled_at"] for r in claims] == [at(2030, 1, 1), at(2031, 1, 1)]


async def test_a_running_job_is_not_started_again(cron_db: CronDb, db: asyncpg.Connection) -> None:
    async with scheduler(cron_db), scheduler(cron_db):
        jobid = await db.fetchval(
            "select cron.schedule('slow', '1 seconds', 'select pg_sleep(2.2)')"
        )
        await wait_for(lambda: _count(db, jobid, "succeeded", 2), timeout=30)
        await db.execute("select cron.unschedule($1::bigint)", jobid)
    done = [r for r in await runs(db, jobid) if r["end_time"] is not None]
    done.sort(key=lambda r: r["start_time"])
    for before, after in itertools.pairwise(done):
        assert after["start_time"] >= before["end_time"]  # never two at once


async def test_runs_as_the_jobs_user(cron_db: CronDb, db: asyncpg.Connection) -> None:
    alice = await cron_db.login_role(db, "alice")
    await db.execute(
        "create table if not exists whoami (cu text, su text);"
        f'truncate whoami; grant insert on whoami to "{alice}"'
    )
    a = await asyncpg.connect(cron_db.url_as(alice, "pw"))
    try:
        async with scheduler(cron_db):
            jobid = await a.fetchval(
                "select cron.schedule('who', '1 seconds',"
                " 'insert into whoami values (current_user, session_user)')"
            )
            denied = await a.fetchval(
                "select cron.schedule('denied', '1 seconds', 'select * from _supalite.cron_claims')"
            )
            await wait_for(lambda: _count(db, jobid, "succeeded", 1))
            await wait_for(lambda: _count(db, denied, "failed", 1))
        assert {tuple(r) for r in await db.fetch("select * from whoami")} == {(alice, alice)}
        msg = (await runs(db, denied))[0]["return_message"]
        assert msg.startswith("ERROR:  permission denied for schema _supalite")
        # pg_cron's policy: a role reads its own run records.
        mine = await a.fetch("select distinct username from cron.job_run_details")
        assert [r["username"] for r in mine] == [alice]
    finally:
        await a.close()


async def test_a_job_for_another_database_is_recorded_as_failed(
    cron_db: CronDb, db: asyncpg.Connection
) -> None:
    async with scheduler(cron_db):
        jobid = await db.fetchval(
            "select cron.schedule_in_database('elsewhere', '1 seconds', 'select 1', 'postgres')"
        )
        await wait_for(lambda: _count(db, jobid, "failed", 1))
    msg = (await runs(db, jobid))[0]["return_message"]
    assert msg == (
        f'supalite runs cron jobs only in database "{cron_db.name}"; '
        'this job is for database "postgres"'
    )


async def test_statement_timeout(cron_db: CronDb, db: asyncpg.Connection) -> None:
    async with scheduler(cron_db, CronSettings(job_timeout=0.5)):
        jobid = await db.fetchval("select cron.schedule('long', '1 seconds', 'select pg_sleep(5)')")
        await wait_for(lambda: _count(db, jobid, "failed", 1))
    msg = (await runs(db, jobid, "failed"))[0]["return_message"]
    assert msg == "ERROR:  canceling statement due to statement timeout\n"


async def test_reboot_jobs_run_once_per_server_start(
    cron_db: CronDb, db: asyncpg.Connection
) -> None:
    jobid = await db.fetchval("select cron.schedule('boot', '@reboot', 'select 1')")
    async with scheduler(cron_db), scheduler(cron_db):
        await wait_for(lambda: _count(db, jobid, "succeeded", 1))
    async with scheduler(cron_db):  # a process started later, same database server
        marker = await db.fetchval("select cron.schedule('marker', '1 seconds', 'select 1')")
        await wait_for(lambda: _count(db, marker, "succeeded", 1))
    assert len(await runs(db, jobid)) == 1


async def test_invalid_rows_in_cron_job_are_skipped(
    cron_db: CronDb, db: asyncpg.Connection
) -> None:
    await db.execute("insert into cron.job (schedule, command) values ('whenever', 'select 1')")
    async with scheduler(cron_db):
        jobid = await db.fetchval("select cron.schedule('fine', '1 seconds', 'select 1')")
        await wait_for(lambda: _count(db, jobid, "succeeded", 1))
    assert await db.fetchval("select count(*) from cron.job_run_details d join cron.job j"
                             " using (jobid) where j.schedule = 'whenever'") == 0  # fmt: skip


async def test_stop_lets_a_short_job_finish(cron_db: CronDb, db: asyncpg.Connection) -> None:
    async with scheduler(cron_db, grace=10):
        jobid = await db.fetchval(
            "select cron.schedule('short', '1 seconds', 'select pg_sleep(1)')"
        )
        await wait_for(lambda: _count(db, jobid, "running", 1))
        runid = (await runs(db, jobid, "running"))[0]["runid"]
        await db.execute("select cron.unschedule($1::bigint)", jobid)
    # The run that was going when stop() began ended normally.
    status = await db.fetchval("select status from cron.job_run_details where runid = $1", runid)
    assert status == "succeeded"
    assert {r["status"] for r in await runs(db, jobid)} == {"succeeded"}


async def test_stop_rolls_back_a_job_that_overruns(cron_db: CronDb, db: asyncpg.Connection) -> None:
    await db.execute("create table if not exists partial (n int); truncate partial")
    async with scheduler(cron_db, grace=0.5):
        jobid = await db.fetchval(
            "select cron.schedule('overrun', '1 seconds',"
            " 'insert into partial values (1); select pg_sleep(30)')"
        )
        await wait_for(lambda: _count(db, jobid, "running", 1))
        await db.execute("select cron.unschedule($1::bigint)", jobid)
    assert [(r["status"], r["return_message"]) for r in await runs(db, jobid)] == [
        ("failed", "job cancelled: supalite stopped")
    ]
    assert await db.fetchval("select count(*) from partial") == 0


async def test_runs_left_by_a_dead_process_are_marked_failed(
    cron_db: CronDb, db: asyncpg.Connection
) -> None:
    runid = await db.fetchval(
        "insert into cron.job_run_details (jobid, job_pid, status, username, database)"
        " values (0, 2147483000, 'running', 'postgres', current_database()) returning runid"
    )
    async with scheduler(cron_db):
        pass
    row = await db.fetchrow("select status, return_message from cron.job_run_details"
                            " where runid = $1", runid)  # fmt: skip
    assert tuple(row) == ("failed", "job connection lost")


async def test_not_started_when_disabled_or_not_the_emulation(
    cron_db: CronDb, db: asyncpg.Connection
) -> None:
    pool = await asyncpg.create_pool(cron_db.url, min_size=1, max_size=2)
    try:
        off = CronScheduler(cron_db.url, pool, CronSettings(enabled=False))
        assert await off.start() is False
        await off.stop()
        await db.execute("comment on schema cron is 'somebody else''s'")
        try:
            other = CronScheduler(cron_db.url, pool, CronSettings())
            assert await other.start() is False
            await other.stop()
        finally:
            await db.execute(
                "comment on schema cron is"
                " 'supalite: pg_cron emulation, jobs run by supalite''s scheduler'"
            )
    finally:
        await pool.close()


async def test_old_claims_are_pruned_but_not_reboot_ones(
    cron_db: CronDb, db: asyncpg.Connection
) -> None:
    await db.execute(
        "insert into _supalite.cron_claims (jobid, scheduled_at, claimed_by) values"
        " (-1, now() - interval '2 hours', 't'), (-2, now() - interval '5 minutes', 't'),"
        " (-3, pg_postmaster_start_time(), 't')"
    )
    async with scheduler(cron_db) as s:
        await s._prune()
    left = await db.fetch("select jobid from _supalite.cron_claims where jobid < 0 order by jobid")
    assert [r["jobid"] for r in left] == [-3, -2]
    await db.execute("delete from _supalite.cron_claims where jobid < 0")
