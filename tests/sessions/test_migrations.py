"""The shipped migrations: `supalite sessions init`, the released files frozen, the tables,
policies and triggers as mcp-ts has them, and RLS checked with two users through the Data API."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from supalite.cli import main as cli
from supalite.sessions import migrations
from tests.helpers import LiveServer
from tests.sessions.conftest import cron_available, sessions_project

# A released migration is never edited (projects that copied it would never see the change):
# a schema change is a new file.  Add new files here; never change a hash.
RELEASED = {
    "20260330195700_install_mcp_sessions.sql": (
        "10fff4809135482dab6ce69fa1e7e51cde8399eb4f5ffab9e0e0d23aea49afcb"
    ),
    "20260330195701_mcp_sessions_policies.sql": (
        "382d691b6475f23e6d8537c1efba14a2a9c597d3a24a8d3326598e63c6b44d0b"
    ),
    "20260421010000_add_session_cleanup_cron.sql": (
        "2d6120e5aad20ae169fcb3f28fa20073135021259f8bed56952aa622b492e5cd"
    ),
}


def test_released_migrations_are_unchanged() -> None:
    shipped = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in migrations.files()}
    for name, digest in RELEASED.items():
        assert shipped.get(name) == digest, f"{name} was edited; ship a new migration instead"


def test_sessions_init_copies_and_reports_conflicts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(["sessions", "init", "--workdir", str(tmp_path)]) == 0
    target = tmp_path / "supabase" / "migrations"
    names = sorted(p.name for p in target.iterdir())
    assert names == sorted(p.name for p in migrations.files())
    for p in migrations.files():
        assert (target / p.name).read_bytes() == p.read_bytes()
    capsys.readouterr()
    assert cli(["sessions", "init", "--workdir", str(tmp_path)]) == 0  # re-run: nothing to do
    assert "Already present" in capsys.readouterr().out
    edited = target / migrations.INSTALL
    edited.write_text("-- my own version\n")
    assert cli(["sessions", "init", "--workdir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert migrations.INSTALL in err and "different content" in err
    assert edited.read_text() == "-- my own version\n"  # left alone
    (target / names[-1]).unlink()
    assert cli(["sessions", "init", "--workdir", str(tmp_path)]) == 1  # still reports the conflict
    assert (target / names[-1]).exists()  # and copies what is missing


def sql(server: LiveServer, statement: str, *args: Any) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(server.info["DB URL"])
        try:
            return list(await conn.fetch(statement, *args))
        finally:
            await conn.close()

    return asyncio.run(run())


def test_tables_policies_and_triggers(supabase_server: LiveServer) -> None:
    policies = sql(
        supabase_server,
        "select tablename, policyname, cmd, roles::text[] as roles,"
        " qual, with_check from pg_policies where schemaname = 'public' and"
        " tablename like 'mcp_%' order by 1, 2",
    )
    assert len(policies) == 8
    assert {(p["tablename"], p["cmd"]) for p in policies} == {
        (t, c)
        for t in ("mcp_sessions", "mcp_credentials")
        for c in ("SELECT", "INSERT", "UPDATE", "DELETE")
    }
    for p in policies:
        assert p["roles"] == ["authenticated"]
        for clause in (p["qual"], p["with_check"]):
            assert clause is None or clause == "((auth.uid())::text = user_id)"
    rls = sql(
        supabase_server,
        "select relname, relrowsecurity from pg_class where relname in"
        " ('mcp_sessions', 'mcp_credentials') and relnamespace = 'public'::regnamespace",
    )
    assert all(r["relrowsecurity"] for r in rls) and len(rls) == 2
    fk = sql(
        supabase_server,
        "select pg_get_constraintdef(oid) as d from pg_constraint"
        " where conname = 'mcp_credentials_session_fk'",
    )
    assert fk[0]["d"] == (
        "FOREIGN KEY (user_id, session_id) REFERENCES"
        " mcp_sessions(user_id, session_id) ON DELETE CASCADE"
    )
    sid = "trg-" + uuid.uuid4().hex
    sql(
        supabase_server,
        "insert into public.mcp_sessions (session_id, user_id, server_url,"
        " transport_type, callback_url, updated_at) values ($1, 'u', 'x', 'sse', 'y',"
        " now() - interval '1 day')",
        sid,
    )
    sql(
        supabase_server,
        "update public.mcp_sessions set server_name = 'n' where session_id = $1",
        sid,
    )
    row = sql(
        supabase_server,
        "select updated_at > now() - interval '1 minute' as bumped"
        " from public.mcp_sessions where session_id = $1",
        sid,
    )
    assert row[0]["bumped"]  # the trigger moved updated_at
    sql(supabase_server, "delete from public.mcp_sessions where session_id = $1", sid)


def _user(http: httpx.Client, anon: str) -> tuple[str, str]:
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    r = http.post(
        "/auth/v1/signup",
        json={"email": email, "password": "secret-pw-1"},
        headers={"apikey": anon},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    return body["user"]["id"], body["access_token"]


def test_two_users_see_and_change_only_their_own_sessions(supabase_server: LiveServer) -> None:
    anon = supabase_server.anon_key
    with supabase_server.client() as http:
        alice, alice_token = _user(http, anon)
        bob, bob_token = _user(http, anon)

        def as_(token: str) -> dict[str, str]:
            return {
                "apikey": anon,
                "Authorization": f"Bearer {token}",
                "Prefer": "return=representation",
            }

        def row(user: str, sid: str) -> dict[str, Any]:
            return {
                "session_id": sid,
                "user_id": user,
                "server_url": "https://m/mcp",
                "transport_type": "streamable-http",
                "callback_url": "https://a/cb",
            }

        a_sid, b_sid = "a-" + uuid.uuid4().hex, "b-" + uuid.uuid4().hex
        r = http.post("/rest/v1/mcp_sessions", json=row(alice, a_sid), headers=as_(alice_token))
        assert r.status_code == 201, r.text
        r = http.post("/rest/v1/mcp_sessions", json=row(bob, b_sid), headers=as_(bob_token))
        assert r.status_code == 201, r.text
        # Alice cannot create a row for Bob.
        r = http.post(
            "/rest/v1/mcp_sessions",
            json=row(bob, "x-" + uuid.uuid4().hex),
            headers=as_(alice_token),
        )
        assert r.status_code in (401, 403), r.text
        assert r.json()["code"] == "42501"
        for user, token, mine in ((alice, alice_token, a_sid), (bob, bob_token, b_sid)):
            r = http.get(
                "/rest/v1/mcp_sessions", params={"select": "session_id,user_id"}, headers=as_(token)
            )
            assert r.status_code == 200
            assert r.json() == [{"session_id": mine, "user_id": user}]
        # Credentials follow the same rule.
        r = http.post(
            "/rest/v1/mcp_credentials",
            headers=as_(alice_token),
            json={"user_id": alice, "session_id": a_sid, "client_id": "mine"},
        )
        assert r.status_code == 201, r.text
        r = http.post(
            "/rest/v1/mcp_credentials",
            headers=as_(bob_token),
            json={"user_id": alice, "session_id": a_sid, "client_id": "evil"},
        )
        assert r.status_code in (401, 403), r.text
        r = http.get("/rest/v1/mcp_credentials", headers=as_(bob_token))
        assert r.json() == []
        # Bob's update and delete of Alice's rows touch nothing.
        r = http.patch(
            "/rest/v1/mcp_sessions",
            params={"session_id": f"eq.{a_sid}"},
            json={"server_name": "owned"},
            headers=as_(bob_token),
        )
        assert r.status_code == 200 and r.json() == []
        r = http.patch(
            "/rest/v1/mcp_credentials",
            params={"session_id": f"eq.{a_sid}"},
            json={"client_id": "owned"},
            headers=as_(bob_token),
        )
        assert r.json() == []
        r = http.delete(
            "/rest/v1/mcp_sessions", params={"session_id": f"eq.{a_sid}"}, headers=as_(bob_token)
        )
        assert r.json() == []
        # Nor can Bob move his own row to Alice (WITH CHECK on update).
        r = http.patch(
            "/rest/v1/mcp_sessions",
            params={"session_id": f"eq.{b_sid}"},
            json={"user_id": alice},
            headers=as_(bob_token),
        )
        assert r.status_code in (401, 403), r.text
        # Alice still has hers, unchanged; she can change and delete it.
        r = http.patch(
            "/rest/v1/mcp_sessions",
            params={"session_id": f"eq.{a_sid}"},
            json={"server_name": "mine"},
            headers=as_(alice_token),
        )
        assert [x["server_name"] for x in r.json()] == ["mine"]
        creds = sql(
            supabase_server,
            "select client_id from public.mcp_credentials where session_id = $1",
            a_sid,
        )
        assert [c["client_id"] for c in creds] == ["mine"]
        r = http.delete(
            "/rest/v1/mcp_sessions", params={"session_id": f"eq.{a_sid}"}, headers=as_(alice_token)
        )
        assert len(r.json()) == 1
        # ... and her credentials went with it (ON DELETE CASCADE).
        assert (
            sql(
                supabase_server, "select 1 from public.mcp_credentials where session_id = $1", a_sid
            )
            == []
        )
        # Anonymous callers (anon key alone) see nothing.
        r = http.get("/rest/v1/mcp_sessions", headers={"apikey": anon})
        assert r.status_code == 200 and r.json() == []


@pytest.mark.skipif(not cron_available(), reason="supalite's pg_cron emulation is not there yet")
def test_cron_migration_schedules_the_sweep(tmp_path: Path) -> None:
    """The migration as mcp-ts ships it (`create extension if not exists pg_cron`, then
    `cron.schedule`), applied by `supalite start` on the embedded PostgreSQL."""
    root = sessions_project(tmp_path, with_cron=True)
    server = LiveServer(root)
    try:
        server.start()
    except RuntimeError as e:
        # Only this one, known gap of the cron emulation (another piece of work) skips.
        if 'extension "pg_cron" is not available' in str(e):
            pytest.skip("supalite's cron emulation does not yet accept CREATE EXTENSION pg_cron")
        raise
    try:
        jobs = sql(server, "select jobname, schedule, command from cron.job order by jobname")
        assert [(j["jobname"], j["schedule"]) for j in jobs] == [
            ("cleanup-dormant-sessions", "0 0 * * *"),
            ("cleanup-transient-sessions", "*/5 * * * *"),
        ]
        assert "status <> 'active'" in jobs[1]["command"]
        # supalite's scheduler runs the job: made to run every second (re-scheduling a name
        # updates the job, as in pg_cron), it deletes an expired pending session and keeps the
        # rest.
        for sid, offset in (("cron-expired", "-1 minute"), ("cron-fresh", "9 minutes")):
            sql(server, INSERT_AT_OFFSETS, sid, "pending", offset, "-1 minute")
        sql(
            server,
            "select cron.schedule('cleanup-transient-sessions', '1 seconds', $1)",
            jobs[1]["command"],
        )
        deadline = time.monotonic() + 60
        left = {"cron-expired"}
        while time.monotonic() < deadline and "cron-expired" in left:
            time.sleep(0.2)
            left = {r[0] for r in sql(server, "select session_id from public.mcp_sessions")}
        assert left == {"cron-fresh"}
        runs = sql(
            server,
            "select d.status from cron.job_run_details d join cron.job j"
            " using (jobid) where j.jobname = 'cleanup-transient-sessions'",
        )
        assert runs and any(r["status"] == "succeeded" for r in runs)
    finally:
        server.stop()


INSERT_AT_OFFSETS = (
    "insert into public.mcp_sessions (session_id, user_id, server_url, transport_type,"
    " callback_url, status, expires_at, updated_at) values ($1, 'u', 'x', 'sse', 'y', $2,"
    " now() + $3::text::interval, now() + $4::text::interval)"
)


async def test_cron_job_commands_sweep_what_cleanup_expired_sweeps(pg_url: str) -> None:
    """The two jobs' DELETE statements, run as the scheduler will run them, remove exactly the
    sessions `cleanup_expired()` removes (checked without a scheduler)."""
    import re

    from supalite.sessions.backends.postgres import PostgresStore

    text = (migrations.FOLDER / "20260421010000_add_session_cleanup_cron.sql").read_text()
    jobs = dict(re.findall(r"cron\.schedule\(\s*'([^']+)',\s*'[^']+',\s*\$\$(.*?)\$\$", text, re.S))
    assert set(jobs) == {"cleanup-transient-sessions", "cleanup-dormant-sessions"}
    store = PostgresStore(pg_url)
    await store.clear_all()
    conn = await asyncpg.connect(pg_url)
    try:
        rows = {  # session id: (status, expires_at offset, updated_at offset)
            "pending-expired": ("pending", "-1 minute", "-11 minutes"),
            "pending-fresh": ("pending", "5 minutes", "-5 minutes"),
            "active-dormant": ("active", None, "-31 days"),
            "active-recent": ("active", None, "-29 days"),
        }
        for sid, (status, expires, updated) in rows.items():
            await conn.execute(
                INSERT_AT_OFFSETS,
                sid,
                status,
                expires,
                updated,
            )
            await conn.execute(
                "insert into public.mcp_credentials (user_id, session_id, client_id)"
                " values ('u', $1, 'c')",
                sid,
            )
        for command in jobs.values():
            await conn.execute(command)
        left = {r[0] for r in await conn.fetch("select session_id from public.mcp_sessions")}
        creds = {r[0] for r in await conn.fetch("select session_id from public.mcp_credentials")}
        assert left == creds == {"pending-fresh", "active-recent"}
        # cleanup_expired() agrees: nothing more to sweep, and it sweeps the same two kinds.
        assert await store.cleanup_expired() == 0
        for sid in ("pending-expired", "active-dormant"):
            status, expires, updated = rows[sid]
            await conn.execute(
                INSERT_AT_OFFSETS,
                sid,
                status,
                expires,
                updated,
            )
        assert await store.cleanup_expired() == 2
    finally:
        await conn.close()
        await store.close()


async def test_private_schema_install_if_missing(pg_url: str) -> None:
    """A store in a private schema installs the shipped file re-qualified there, and with
    `if_missing` does no DDL once the tables exist (each start would run it otherwise)."""
    from supalite.sessions.backends.postgres import PostgresStore
    from supalite.sessions.models import Session

    schema = "priv_" + uuid.uuid4().hex[:8]
    store = PostgresStore(pg_url, schema=schema)
    try:
        await store.install_schema(if_missing=True)
        await store.create(Session("s1", "u1", "https://mcp.example", "https://app.example"))
        conn = await asyncpg.connect(pg_url)
        try:
            where = await conn.fetch(
                "select relnamespace::regnamespace::text as ns from pg_class"
                " where relname = 'mcp_sessions' and relnamespace = $1::regnamespace",
                schema,
            )
            assert [r["ns"] for r in where] == [schema]
            assert await conn.fetchval(f"select count(*) from {schema}.mcp_sessions") == 1
            await conn.execute(f"drop trigger trg_mcp_sessions_updated_at on {schema}.mcp_sessions")
            await store.install_schema(if_missing=True)  # the tables exist: nothing runs
            trigger = (
                f"select count(*) from pg_trigger where tgrelid = '{schema}.mcp_sessions'"
                "::regclass and tgname = 'trg_mcp_sessions_updated_at'"
            )
            assert await conn.fetchval(trigger) == 0
            await store.install_schema()  # a full install puts it back, keeping the rows
            assert await conn.fetchval(trigger) == 1
            assert await conn.fetchval(f"select count(*) from {schema}.mcp_sessions") == 1
        finally:
            await conn.close()
    finally:
        await store.close()
    with pytest.raises(Exception, match="bad schema name"):
        PostgresStore(pg_url, schema="x; drop table y")
