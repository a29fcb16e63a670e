"""The command line end to end, as a user runs it: subprocesses, real servers, real ports."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time
from pathlib import Path

import asyncpg
import httpx

from tests.helpers import ExternalPostgres, LiveServer, free_port, status_json, supalite


def _pid_gone(pid: int, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


async def _fetch(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


def fetch(url: str, sql: str) -> list[asyncpg.Record]:
    return asyncio.run(_fetch(url, sql))


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def execute(url: str, sql: str) -> None:
    """Run a script (several statements), as psql would."""
    asyncio.run(_execute(url, sql))


def test_init_writes_the_supabase_layout(tmp_path: Path) -> None:
    r = supalite("init", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    sb = tmp_path / "supabase"
    assert (sb / "config.toml").is_file() and (sb / "seed.sql").is_file()
    assert (sb / "migrations").is_dir() and (sb / "functions").is_dir()
    assert ".supalite/" in (sb / ".gitignore").read_text()
    r = supalite("init", cwd=tmp_path)
    assert r.returncode == 1 and "already exists" in r.stderr


def test_start_serve_status_logs_and_clean_stop(project: Path) -> None:
    server = LiveServer(project).start()
    try:
        out = "".join(server.output)
        assert (
            "Starting database (embedded PostgreSQL" in out and "Initialising a new cluster" in out
        )
        with server.client() as c:
            assert c.get("/rest/v1/").status_code == 401
            r = c.get("/rest/v1/", headers={"apikey": server.anon_key})
            assert r.status_code == 200 and r.json()["swagger"] == "2.0"
            assert c.get("/health").json()["services"]["db"] == "ok"
        st = supalite("status", "-o", "env", cwd=project)
        assert st.returncode == 0, st.stderr
        lines = dict(line.split("=", 1) for line in st.stdout.splitlines())
        assert lines["API_URL"] == f'"{server.url}"'
        assert lines["ANON_KEY"] == f'"{server.anon_key}"'
        assert lines["SERVICE_ROLE_KEY"] == f'"{server.service_key}"'
        assert lines["DB_URL"].startswith('"postgresql://postgres:postgres@127.0.0.1:')
        # DB_URL works for the user's own tools.
        assert fetch(json.loads(lines["DB_URL"]), "select 1 as x")[0]["x"] == 1
        logs = supalite("logs", "--service", "rest", cwd=project)
        entries = [json.loads(line) for line in logs.stdout.splitlines()]
        assert [(e["method"], e["path"], e["status"]) for e in entries] == [
            ("GET", "/rest/v1/", 401),
            ("GET", "/rest/v1/", 200),
        ]
        assert entries[1]["role"] == "anon" and entries[1]["service"] == "rest"
        assert {"time", "duration_ms"} <= set(entries[0])
        state = json.loads((project / "supabase" / ".supalite" / "status.json").read_text())
        pg_pid = state["postgres_pid"]
    finally:
        rest = server.stop(signal.SIGINT)
    assert server.proc is not None and server.proc.returncode == 0
    assert "Stopped supalite." in rest
    assert _pid_gone(pg_pid)
    r = supalite("status", cwd=project)
    assert r.returncode == 1 and "not running" in r.stderr


def test_warm_restart_keeps_data_and_keys(project: Path) -> None:
    with LiveServer(project) as first:
        execute(
            first.info["DB URL"],
            "create table public.kept (x int); insert into public.kept values (7)",
        )
        anon = first.anon_key
    with LiveServer(project) as second:
        assert "Initialising a new cluster" not in "".join(second.output)
        assert second.anon_key == anon
        assert fetch(second.info["DB URL"], "select x from public.kept")[0]["x"] == 7


def test_kill_9_of_supalite_stops_postgres_and_restarts_cleanly(project: Path) -> None:
    server = LiveServer(project).start()
    db_url = server.info["DB URL"]
    execute(db_url, "create table public.acked (x int); insert into public.acked values (1), (2)")
    pg_pid = json.loads((project / "supabase" / ".supalite" / "status.json").read_text())[
        "postgres_pid"
    ]
    server.stop(signal.SIGKILL)
    assert _pid_gone(pg_pid), "postgres outlived a killed supalite"
    with LiveServer(project) as again:
        assert [
            r["x"] for r in fetch(again.info["DB URL"], "select x from public.acked order by x")
        ] == [1, 2]
        with again.client() as c:
            assert c.get("/rest/v1/", headers={"apikey": again.anon_key}).status_code == 200


def test_migrations_push_fail_reset_dump(project: Path) -> None:
    sb = project / "supabase"
    r = supalite("migration", "new", "create_todos", cwd=project)
    assert r.returncode == 0, r.stderr
    first = next((sb / "migrations").glob("*_create_todos.sql"))
    first.write_text(
        "-- todos\ncreate table public.todos (\n"
        "  id bigint generated by default as identity primary key,\n"
        "  title text not null\n);\n\n"
        "create function public.semi() returns text language sql as $$ select ';' $$;\n"
    )
    (sb / "seed.sql").write_text("insert into public.todos (title) values ('seeded');\n")
    r = supalite("db", "push", cwd=project)
    assert r.returncode == 0, r.stderr
    assert f"Applied migration {first.name}" in r.stdout

    time.sleep(1.1)  # the next migration gets a later timestamp
    r = supalite("migration", "new", "broken", cwd=project)
    broken = next((sb / "migrations").glob("*_broken.sql"))
    broken.write_text(
        "create table public.half_done (x int);\n\n"
        "insert into public.todos (title)\n  values ('a'),\n  ('b', 'c');\n"
    )
    r = supalite("db", "push", cwd=project)
    assert r.returncode == 1
    assert f"{broken}:5:" in r.stderr  # the line of the offending tuple
    assert "VALUES lists must all be the same length" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1

    with LiveServer(project) as server:
        db = server.info["DB URL"]
        assert (
            fetch(db, "select to_regclass('public.half_done') as t")[0]["t"] is None
        )  # none of it
        recorded = fetch(
            db, "select version, name, statements from supabase_migrations.schema_migrations"
        )
        assert [(r["name"], len(r["statements"])) for r in recorded] == [("create_todos", 2)]
        assert fetch(db, "select public.semi() as s")[0]["s"] == ";"

        broken.write_text("create table public.fixed (x int);\n")
        r = supalite("db", "push", cwd=project)  # against the running server's database
        assert r.returncode == 0, r.stderr
        assert (
            fetch(db, "select count(*) as n from supabase_migrations.schema_migrations")[0]["n"]
            == 2
        )

        dump = supalite("db", "dump", cwd=project)
        assert dump.returncode == 0, dump.stderr
        assert 'CREATE TABLE "public"."todos"' in dump.stdout
        assert '"auth"' not in dump.stdout  # managed schemas are not the user's

    r = supalite("db", "reset", cwd=project)
    assert r.returncode == 0, r.stderr
    assert "Seeded data from supabase/seed.sql" in r.stdout
    with LiveServer(project) as server:
        db = server.info["DB URL"]
        assert [r["title"] for r in fetch(db, "select title from public.todos")] == ["seeded"]
        assert (
            fetch(db, "select count(*) as n from supabase_migrations.schema_migrations")[0]["n"]
            == 2
        )
        assert (
            fetch(db, "select count(*) as n from pg_roles where rolname = 'authenticator'")[0]["n"]
            == 1
        )


def test_bad_migration_name(project: Path) -> None:
    r = supalite("migration", "new", "../escape", cwd=project)
    assert r.returncode == 1 and "invalid migration name" in r.stderr
    assert not list((project / "supabase" / "migrations").iterdir())


def test_api_port_in_use(project: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = supalite("start", "--port", str(port), cwd=project, timeout=60)
    assert r.returncode == 1
    assert (
        r.stderr.strip()
        == f"supalite: port {port} on 127.0.0.1 is already in use (use --port or [api] port)"
    )
    assert not (project / "supabase" / ".supalite" / "pg").exists()  # nothing half-created


def test_unusable_data_folder(project: Path) -> None:
    blocker = project / "not-a-dir"
    blocker.write_text("")
    r = supalite("start", cwd=project, env={"SUPALITE_DATA_DIR": str(blocker / "data")})
    assert r.returncode == 1
    assert r.stderr.startswith(f"supalite: data folder {blocker / 'data'} is not usable")
    assert len(r.stderr.strip().splitlines()) == 1


def test_corrupt_config(project: Path) -> None:
    cfg = project / "supabase" / "config.toml"
    cfg.write_text(cfg.read_text() + "\n[api\n")
    r = supalite("start", cwd=project)
    assert r.returncode == 1
    assert r.stderr.startswith(f"supalite: {cfg}: invalid TOML")
    assert not (project / "supabase" / ".supalite").exists()


def test_database_unreachable(project: Path) -> None:
    port = free_port()
    r = supalite(
        "start",
        cwd=project,
        env={"DATABASE_URL": f"postgresql://postgres:x@127.0.0.1:{port}/postgres"},
    )
    assert r.returncode == 1
    assert r.stderr.startswith(f"supalite: cannot connect to the database at 127.0.0.1:{port}")
    assert len(r.stderr.strip().splitlines()) == 1


def test_second_start_is_refused(project: Path) -> None:
    with LiveServer(project) as server:
        r = supalite("start", "--port", str(free_port()), cwd=project)
        assert r.returncode == 1 and "already running" in r.stderr
        with server.client() as c:
            assert c.get("/health").status_code == 200


def test_external_database_url(project: Path, external_pg: ExternalPostgres) -> None:
    env = {"DATABASE_URL": external_pg.url}
    (project / "supabase" / "migrations" / "20240101000000_ext.sql").write_text(
        "create table public.ext (id int primary key);\n"
    )
    with LiveServer(project, env=env) as server:
        assert "Connecting to the database at 127.0.0.1" in "".join(server.output)
        with server.client() as c:
            assert c.get("/rest/v1/", headers={"apikey": server.anon_key}).status_code == 200
            assert c.get("/rest/v1/").status_code == 401
            assert "external" in c.get("/health").json()["database"]
        roles = fetch(
            external_pg.url,
            "select rolname from pg_roles"
            " where rolname in ('anon', 'authenticated', 'service_role', 'authenticator')",
        )
        assert len(roles) == 4
        assert not (project / "supabase" / ".supalite" / "pg").exists()  # no embedded cluster
        st = status_json(project)
        assert st["DB_URL"] == external_pg.url
    r = supalite("db", "push", cwd=project, env=env)
    assert r.returncode == 0, r.stderr
    assert fetch(external_pg.url, "select to_regclass('public.ext') is not null as ok")[0]["ok"]


def test_workers_share_one_port_and_database(project: Path) -> None:
    with LiveServer(project, "--workers", "2") as server:
        with server.client() as c:
            for _ in range(20):
                assert c.get("/rest/v1/", headers={"apikey": server.anon_key}).status_code == 200
        assert server.proc is not None
        children = (
            Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text().split()
        )
        names = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in children]
        assert sum(b"spawn_main" in n for n in names) == 2, names  # two uvicorn workers


def test_json_config_file_on_start(project: Path) -> None:
    cfg = project / "supalite.json"
    cfg.write_text(
        json.dumps({"supabase": {"database": {"poolSize": 3}, "storage": {"maxFileSize": "1MB"}}})
    )
    with LiveServer(project, "--config", str(cfg)) as server, server.client() as c:
        assert c.get("/health").status_code == 200
    cfg.write_text(json.dumps({"supabase": {"database": {"poolsize": 3}}}))
    r = supalite("start", "--config", str(cfg), cwd=project)
    assert r.returncode == 1
    assert r.stderr.strip() == f"supalite: {cfg}: unknown key 'supabase.database.poolsize'"


def test_logs_tail_returns_the_last_entries(project: Path) -> None:
    with LiveServer(project) as server, httpx.Client(base_url=server.url) as c:
        for i in range(30):
            c.get(f"/rest/v1/?n={i}", headers={"apikey": server.anon_key})
    entries = [json.loads(x) for x in supalite("logs", "-n", "5", cwd=project).stdout.splitlines()]
    assert len(entries) == 5 and all(e["status"] == 200 for e in entries)
