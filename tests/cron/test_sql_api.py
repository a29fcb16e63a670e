"""The `cron` schema on the embedded PostgreSQL: pg_cron's tables, functions, errors and RLS."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supalite.cron import sql
from supalite.cron.schedule import is_valid
from supalite.db.bootstrap import bootstrap, steps
from tests.conftest import TEST_SECRET
from tests.cron.conftest import CronDb, drop_cron_db, new_cron_db
from tests.cron.test_live import MIGRATION
from tests.cron.test_schedule import INVALID, VALID


def uniq(prefix: str = "job") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_tables_have_pg_crons_shape(db: asyncpg.Connection) -> None:
    cols = await db.fetch(
        "select table_name, column_name, data_type, column_default, is_nullable"
        " from information_schema.columns where table_schema = 'cron' order by ordinal_position"
    )
    job = [(c["column_name"], c["data_type"]) for c in cols if c["table_name"] == "job"]
    assert job == [
        ("jobid", "bigint"), ("schedule", "text"), ("command", "text"), ("nodename", "text"),
        ("nodeport", "integer"), ("database", "text"), ("username", "text"),
        ("active", "boolean"), ("jobname", "text"),
    ]  # fmt: skip
    details = [c["column_name"] for c in cols if c["table_name"] == "job_run_details"]
    assert details == [
        "jobid", "runid", "job_pid", "database", "username", "command", "status",
        "return_message", "start_time", "end_time",
    ]  # fmt: skip
    assert await db.fetchval(sql.EMULATION_IN_USE) is True


async def test_schedule_returns_ids_and_fills_defaults(db: asyncpg.Connection) -> None:
    a = await db.fetchval("select cron.schedule('*/5 * * * *', 'select 1')")
    b = await db.fetchval("select cron.schedule($1, '0 3 * * *', 'select 2')", uniq())
    assert isinstance(a, int) and b > a
    row = await db.fetchrow("select * from cron.job where jobid = $1", a)
    assert row["schedule"] == "*/5 * * * *" and row["command"] == "select 1"
    assert row["nodename"] == "localhost"
    assert row["nodeport"] == int(await db.fetchval("select current_setting('port')"))
    assert row["database"] == await db.fetchval("select current_database()")
    assert row["username"] == "postgres"
    assert row["active"] is True and row["jobname"] is None
    # Direct inserts get pg_cron's column defaults too.
    c = await db.fetchval("insert into cron.job (schedule, command) values ('@daily', 'select 3')"
                          " returning nodeport")  # fmt: skip
    assert c == row["nodeport"]


async def test_named_schedule_updates_the_same_job(db: asyncpg.Connection) -> None:
    name = uniq()
    first = await db.fetchval("select cron.schedule($1, '*/5 * * * *', 'select 1')", name)
    await db.execute("select cron.alter_job($1, active := false)", first)
    again = await db.fetchval("select cron.schedule($1, '0 3 * * *', 'select 2')", name)
    assert again == first
    row = await db.fetchrow("select * from cron.job where jobid = $1", first)
    assert (row["schedule"], row["command"]) == ("0 3 * * *", "select 2")
    assert row["active"] is False  # pg_cron updates schedule, command and database only
    assert await db.fetchval("select count(*) from cron.job where jobname = $1", name) == 1


async def test_the_mcp_session_migration_runs(db: asyncpg.Connection) -> None:
    # As a migration runs it, twice (re-applied: named jobs update, the extension is skipped).
    for _ in range(2):
        async with db.transaction():
            await db.execute(MIGRATION)
    rows = await db.fetch(
        "select jobname, schedule from cron.job where jobname like 'cleanup-%' order by jobname"
    )
    assert [tuple(r) for r in rows] == [
        ("cleanup-dormant-sessions", "0 0 * * *"),
        ("cleanup-transient-sessions", "*/5 * * * *"),
    ]
    ext = await db.fetchrow(
        "select extversion, obj_description(oid, 'pg_extension') as comment"
        " from pg_extension where extname = 'pg_cron'"
    )
    assert tuple(ext) == ("supalite", "Automated Session Lifecycle Management.")
    assert await db.fetchval(sql.EMULATION_IN_USE) is True  # the placeholder is not pg_cron


SHIPPED = Path(__file__).resolve().parents[2] / "src/supalite/sessions/migrations"


async def test_the_shipped_session_migrations_run(cron_db: CronDb) -> None:
    other = await new_cron_db(cron_db.pg)
    try:
        conn = await asyncpg.connect(other.url)
        try:
            for path in sorted(SHIPPED.glob("*.sql")):
                async with conn.transaction():
                    await conn.execute(path.read_text())
            names = await conn.fetch("select jobname from cron.job order by jobname")
            assert [r["jobname"] for r in names] == [
                "cleanup-dormant-sessions",
                "cleanup-transient-sessions",
            ]
        finally:
            await conn.close()
    finally:
        await drop_cron_db(other)


async def test_unschedule_by_id_and_name(db: asyncpg.Connection) -> None:
    jobid = await db.fetchval("select cron.schedule('* * * * *', 'select 1')")
    assert await db.fetchval("select cron.unschedule($1::bigint)", jobid) is True
    with pytest.raises(asyncpg.PostgresError, match=f"could not find valid entry for job {jobid}$"):
        await db.fetchval("select cron.unschedule($1::bigint)", jobid)
    name = uniq()
    await db.fetchval("select cron.schedule($1, '* * * * *', 'select 1')", name)
    assert await db.fetchval("select cron.unschedule($1::text)", name) is True
    with pytest.raises(asyncpg.PostgresError, match=f"could not find valid entry for job '{name}'"):
        await db.fetchval("select cron.unschedule($1::text)", name)
    # Untyped literals resolve as pg_cron's do (a quoted name is text, a number bigint).
    await db.fetchval("select cron.schedule($1, '* * * * *', 'select 1')", "lit-job")
    assert await db.fetchval("select cron.unschedule('lit-job')") is True
    assert await db.fetchval("select cron.unschedule(null::bigint)") is None  # STRICT


async def test_alter_job(db: asyncpg.Connection) -> None:
    jobid = await db.fetchval("select cron.schedule('* * * * *', 'select 1')")
    await db.execute(
        "select cron.alter_job($1, schedule := '0 0 * * *', command := 'select 2')", jobid
    )
    await db.execute("select cron.alter_job(job_id := $1, active := false)", jobid)
    row = await db.fetchrow("select * from cron.job where jobid = $1", jobid)
    assert (row["schedule"], row["command"], row["active"]) == ("0 0 * * *", "select 2", False)
    with pytest.raises(asyncpg.PostgresError, match="no updates specified") as e:
        await db.execute("select cron.alter_job($1)", jobid)
    assert "at least one job attribute" in (e.value.hint or "")
    with pytest.raises(
        asyncpg.PostgresError, match="Job 999999 does not exist or you don't own it"
    ):
        await db.execute("select cron.alter_job(999999, command := 'select 1')")
    with pytest.raises(asyncpg.PostgresError, match="job_id can not be NULL"):
        await db.execute("select cron.alter_job(null, command := 'select 1')")
    with pytest.raises(asyncpg.PostgresError, match="invalid schedule: nope"):
        await db.execute("select cron.alter_job($1, schedule := 'nope')", jobid)
    with pytest.raises(asyncpg.PostgresError, match='database "nowhere" does not exist'):
        await db.execute("select cron.alter_job($1, database := 'nowhere')", jobid)


@pytest.mark.parametrize("bad", ["nope", "60 * * * *", "1/5 * * * *", "0 seconds", "@every 1m"])
async def test_invalid_schedule_is_rejected_with_pg_crons_error(
    db: asyncpg.Connection, bad: str
) -> None:
    before = await db.fetchval("select count(*) from cron.job")
    for call in (
        "select cron.schedule($1, 'select 1')",
        "select cron.schedule('named-bad', $1, 'select 1')",
        "select cron.schedule_in_database('named-bad', $1, 'select 1', current_database())",
    ):
        with pytest.raises(asyncpg.InvalidParameterValueError) as e:
            await db.fetchval(call, bad)
        assert e.value.args[0] == f"invalid schedule: {bad}"
        assert e.value.hint == (
            "Use cron format (e.g. 5 4 * * *), or interval format '[1-59] seconds'"
        )
    assert await db.fetchval("select count(*) from cron.job") == before


async def test_null_arguments(db: asyncpg.Connection) -> None:
    # The two-argument form is STRICT in pg_cron: NULL in, NULL out, nothing scheduled.
    assert await db.fetchval("select cron.schedule(null, 'select 1')") is None
    for call, message in (
        ("select cron.schedule(null::text, '* * * * *', 'select 1')", "job_name can not be NULL"),
        ("select cron.schedule('n', null, 'select 1')", "schedule can not be NULL"),
        ("select cron.schedule('n', '* * * * *', null)", "command can not be NULL"),
    ):
        with pytest.raises(asyncpg.PostgresError, match=message):
            await db.fetchval(call)


async def test_schedule_in_database(db: asyncpg.Connection) -> None:
    name = uniq()
    jobid = await db.fetchval(
        "select cron.schedule_in_database($1, '* * * * *', 'select 1', 'postgres',"
        " active := false)",
        name,
    )
    row = await db.fetchrow(
        "select database, active, username from cron.job where jobid = $1", jobid
    )
    assert tuple(row) == ("postgres", False, "postgres")
    with pytest.raises(asyncpg.PostgresError, match='database "nowhere" does not exist'):
        await db.fetchval(
            "select cron.schedule_in_database('x', '* * * * *', 'select 1', 'nowhere')"
        )
    with pytest.raises(asyncpg.PostgresError, match='role "nobody_here" does not exist'):
        await db.fetchval(
            "select cron.schedule_in_database('x', '* * * * *', 'select 1', current_database(),"
            " 'nobody_here')"
        )
    with pytest.raises(asyncpg.PostgresError, match='role "anon" can not log in'):
        await db.fetchval(
            "select cron.schedule_in_database('x', '* * * * *', 'select 1', current_database(),"
            " 'anon')"
        )


async def test_each_role_sees_and_changes_only_its_own_jobs(
    cron_db: CronDb, db: asyncpg.Connection
) -> None:
    alice = await cron_db.login_role(db, "alice")
    bob = await cron_db.login_role(db, "bob")
    admins_job = await db.fetchval("select cron.schedule('* * * * *', 'select 1')")
    a = await asyncpg.connect(cron_db.url_as(alice, "pw"))
    b = await asyncpg.connect(cron_db.url_as(bob, "pw"))
    try:
        alices_job = await a.fetchval("select cron.schedule('mine', '* * * * *', 'select 1')")
        bobs_job = await b.fetchval("select cron.schedule('mine', '* * * * *', 'select 2')")
        assert bobs_job != alices_job  # the same name for different users: two jobs
        seen = await a.fetch("select jobid, username from cron.job")
        assert [tuple(r) for r in seen] == [(alices_job, alice)]
        for other in (admins_job, bobs_job):
            with pytest.raises(asyncpg.PostgresError, match="could not find valid entry"):
                await a.fetchval("select cron.unschedule($1::bigint)", other)
        # Nor can a row be written for someone else directly.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await a.execute(
                "insert into cron.job (schedule, command, username) values ('* * * * *', 'x', $1)",
                bob,
            )
        # The functions pg_cron reserves for administrators.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await a.execute("select cron.alter_job($1, active := false)", alices_job)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await a.fetchval(
                "select cron.schedule_in_database('x', '* * * * *', 'select 1', current_database())"
            )
        await db.execute(
            "grant execute on function cron.schedule_in_database(text, text, text, text, text,"
            f' boolean), cron.alter_job(bigint, text, text, text, text, boolean) to "{alice}"'
        )
        for other in (admins_job, bobs_job):
            with pytest.raises(asyncpg.PostgresError, match="does not exist or you don't own"):
                await a.execute("select cron.alter_job($1, command := 'select 666')", other)
        assert await db.fetchval("select count(*) from cron.job where command = 'select 666'") == 0
        with pytest.raises(asyncpg.PostgresError, match="must be superuser to create a job for"):
            await a.fetchval(
                "select cron.schedule_in_database('x', '* * * * *', 'select 1',"
                " current_database(), $1)",
                bob,
            )
        with pytest.raises(asyncpg.PostgresError, match="must be superuser to alter username"):
            await a.execute("select cron.alter_job($1, username := $2)", alices_job, bob)
        await a.execute("select cron.alter_job($1, active := false)", alices_job)
        assert await a.fetchval("select cron.unschedule('mine')") is True
        assert await b.fetchval("select count(*) from cron.job where jobname = 'mine'") == 1
        # The superuser sees everyone's jobs and may change them, as under pg_cron.
        await db.execute("select cron.alter_job($1, username := $2)", bobs_job, alice)
        assert (
            await db.fetchval("select username from cron.job where jobid = $1", bobs_job) == alice
        )
    finally:
        await a.close()
        await b.close()


async def test_who_may_use_cron(db: asyncpg.Connection) -> None:
    rows = await db.fetch(
        "select r.rolname, has_schema_privilege(r.rolname, 'cron', 'usage') as usage"
        " from pg_roles r where r.rolname in ('postgres', 'supabase_admin', 'anon',"
        " 'authenticated', 'service_role', 'authenticator')"
    )
    assert {r["rolname"]: r["usage"] for r in rows} == {
        "postgres": True,
        "supabase_admin": True,
        "anon": False,
        "authenticated": False,
        "service_role": False,
        "authenticator": False,
    }


async def test_bootstrap_again_keeps_jobs(cron_db: CronDb, db: asyncpg.Connection) -> None:
    jobid = await db.fetchval("select cron.schedule($1, '* * * * *', 'select 1')", uniq())
    cron_step = next(s for v, name, s in steps() if name == "cron")
    await db.execute(cron_step)
    assert await bootstrap(cron_db.url, TEST_SECRET) == []
    assert await db.fetchval("select count(*) from cron.job where jobid = $1", jobid) == 1
    assert await db.fetchval(sql.EMULATION_IN_USE) is True


async def test_the_extension_placeholder_goes_with_the_schema(cron_db: CronDb) -> None:
    other = await new_cron_db(cron_db.pg)
    try:
        conn = await asyncpg.connect(other.url)
        try:
            # What `supalite db reset` does on a DATABASE_URL server: drop every schema.
            await conn.execute("drop schema cron cascade")
            assert (
                await conn.fetchval("select count(*) from pg_extension where extname = 'pg_cron'")
                == 0
            )
            await conn.execute("drop schema _supalite cascade")
            await bootstrap(other.url, TEST_SECRET)
            row = await conn.fetchrow(
                "select e.extversion, n.nspname from pg_extension e"
                " join pg_namespace n on n.oid = e.extnamespace where e.extname = 'pg_cron'"
            )
            assert tuple(row) == ("supalite", "pg_catalog")  # where Supabase puts pg_cron
            assert await conn.fetchval(sql.EMULATION_IN_USE) is True
        finally:
            await conn.close()
    finally:
        await drop_cron_db(other)


async def test_someone_elses_cron_schema_is_left_alone(cron_db: CronDb) -> None:
    other = await new_cron_db_without_bootstrap(cron_db)
    try:
        conn = await asyncpg.connect(other.url)
        try:
            await conn.execute("create schema cron; create table cron.job (id int)")
            await bootstrap(other.url, TEST_SECRET)
            cols = await conn.fetch(
                "select column_name from information_schema.columns"
                " where table_schema = 'cron' and table_name = 'job'"
            )
            assert [c["column_name"] for c in cols] == ["id"]
            assert await conn.fetchval("select to_regprocedure('cron.schedule(text,text)')") is None
            assert await conn.fetchval(sql.EMULATION_IN_USE) is False
        finally:
            await conn.close()
    finally:
        await drop_cron_db(other)


async def new_cron_db_without_bootstrap(like: CronDb) -> CronDb:
    other = CronDb(like.pg, f"cron_{uuid.uuid4().hex[:10]}")
    admin = await asyncpg.connect(like.pg.local_url())
    try:
        await admin.execute(f'create database "{other.name}"')
    finally:
        await admin.close()
    return other


# ---------------------------------------------------------------------------- SQL == Python


@pytest.mark.parametrize("text", VALID + INVALID)
async def test_sql_validator_agrees_on_the_corpus(db: asyncpg.Connection, text: str) -> None:
    assert await db.fetchval("select cron._valid_schedule($1)", text) is is_valid(text)


schedule_like = st.text(
    alphabet=st.sampled_from(list(" \t\n*/-,$@#+0123456789") + list("adeijlmnorstuwyADMS")),
    max_size=24,
) | st.builds(
    lambda parts: " ".join(parts),
    st.lists(
        st.sampled_from(
            ["*", "*/5", "0", "59", "60", "1-5", "5-1", "1-5/2", "1,2", "jan", "MON", "sun-sat",
             "$", "7", "8", "*/0", "1/2", "x", "", "00", "4294967301", "@daily", "seconds"]
        ),
        min_size=0,
        max_size=7,
    ),
)  # fmt: skip


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=schedule_like)
async def test_sql_validator_agrees_with_python(db: asyncpg.Connection, text: str) -> None:
    assert await db.fetchval("select cron._valid_schedule($1)", text) is is_valid(text)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sign=st.sampled_from(["", "+", "-"]),
    n=st.integers(0, 2**66),
    space=st.sampled_from(["", " ", "\t", "  "]),
    unit=st.sampled_from(["second", "seconds", "SECONDS", "seconds ", "second ", "secs"]),
)
async def test_interval_forms_agree(
    db: asyncpg.Connection, sign: str, n: int, space: str, unit: str
) -> None:
    text = f"{space}{sign}{n}{space}{unit}"
    assert await db.fetchval("select cron._valid_schedule($1)", text) is is_valid(text)
