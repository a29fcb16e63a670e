"""Two processes writing one session, and a database that goes away mid-operation.

The store's rule is last-write-wins per field: concurrent writers of different fields both
keep their writes; concurrent writers of one field leave one of their values, whole.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from supalite.sessions import errors
from supalite.sessions.backends.postgres import PostgresStore
from supalite.sessions.backends.redis import RedisStore
from supalite.sessions.models import Session
from supalite.sessions.store import SessionStore
from tests.helpers import REPO, ExternalPostgres, free_port
from tests.sessions.conftest import RedisServer

N = 40


def new(sid: str) -> Session:
    return Session(sid, "u", "https://m/mcp", "https://a/cb")


def worker_where(kind: str, where: str, tmp_path: Path) -> str:
    return str(tmp_path) if kind in ("file", "sqlite") else where


async def run_workers(
    store: SessionStore, kind: str, where: str, tmp_path: Path, jobs: list[tuple[str, str]]
) -> None:
    prefix = getattr(store, "prefix", "-")
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.sessions.worker",
                kind,
                worker_where(kind, where, tmp_path),
                prefix,
                "u",
                "shared",
                field,
                tag,
                str(N),
            ],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for field, tag in jobs
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    for p in procs:  # release them together
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        _, err = await asyncio.to_thread(p.communicate, timeout=300)
        assert p.returncode == 0, err


async def test_two_processes_different_fields_lose_nothing(
    persistent: SessionStore, persistent_backend: tuple[str, str], tmp_path: Path
) -> None:
    await persistent.create(new("shared"))
    await persistent.patch_credentials("u", "shared", {"client_id": "start"})
    await run_workers(
        persistent,
        *persistent_backend,
        tmp_path,
        [("server_name", "A"), ("auth_url", "B"), ("tokens", "C"), ("client_id", "D")],
    )
    s = await persistent.get("u", "shared")
    c = await persistent.get_credentials("u", "shared")
    assert s is not None and c is not None
    assert (s.server_name, s.auth_url) == (f"A-{N - 1}", f"B-{N - 1}")
    assert (c.tokens, c.client_id) == ({"n": f"C-{N - 1}"}, f"D-{N - 1}")


async def test_two_processes_same_field_last_write_wins_whole(
    persistent: SessionStore, persistent_backend: tuple[str, str], tmp_path: Path
) -> None:
    await persistent.create(new("shared"))
    await run_workers(
        persistent,
        *persistent_backend,
        tmp_path,
        [("server_name", "A"), ("server_name", "B"), ("tokens", "A"), ("tokens", "B")],
    )
    s = await persistent.get("u", "shared")
    c = await persistent.get_credentials("u", "shared")
    assert s is not None and s.server_name in (f"A-{N - 1}", f"B-{N - 1}")
    assert c is not None and c.tokens in ({"n": f"A-{N - 1}"}, {"n": f"B-{N - 1}"})


async def test_connection_killed_mid_transaction_leaves_nothing_half_done(pg_url: str) -> None:
    store = PostgresStore(pg_url, min_size=1, max_size=1)
    await store.clear_all()
    await store.create(new("keep"))
    await store.patch_credentials("u", "keep", {"tokens": {"access_token": "t"}})
    admin = await asyncpg.connect(pg_url)
    try:
        # Hold the sessions table so clear_all stops after deleting the credentials ...
        locker = await asyncpg.connect(pg_url)
        tx = locker.transaction()
        await tx.start()
        await locker.execute("lock table public.mcp_sessions in access exclusive mode")
        task = asyncio.create_task(store.clear_all())
        for _ in range(400):
            waiting = await admin.fetch(
                "select pid from pg_stat_activity where wait_event_type = 'Lock'"
                " and query like 'delete from public.mcp_sessions%'"
            )
            if waiting:
                break
            await asyncio.sleep(0.025)
        assert waiting, "clear_all never reached the sessions table"
        # ... then the connection dies, as when the database restarts or a proxy drops it.
        await admin.execute("select pg_terminate_backend($1)", waiting[0]["pid"])
        with pytest.raises(errors.SessionStoreError) as e:
            await task
        assert e.value.code == errors.UNAVAILABLE
        await tx.rollback()
        await locker.close()
    finally:
        await admin.close()
    # The credentials deleted before the kill are back: the transaction never committed.
    creds = await store.get_credentials("u", "keep")
    assert creds is not None and creds.tokens == {"access_token": "t"}
    await store.close()


async def test_postgres_server_going_away_and_coming_back(tmp_path: Path) -> None:
    (tmp_path / "pg").mkdir()
    ext = ExternalPostgres(tmp_path / "pg", free_port())
    ext.start()
    ctl = str(ext.bindir / "pg_ctl")
    try:
        store = PostgresStore(ext.url)
        await store.install_schema()
        await store.create(new("s"))
        ext._run(ctl, "-D", str(ext.pgdata), "-m", "immediate", "stop")
        for call in (
            store.get("u", "s"),
            store.update("u", "s", {"server_name": "x"}),
            store.create(new("t")),
        ):
            with pytest.raises(errors.SessionStoreError) as e:
                await call
            assert e.value.code == errors.UNAVAILABLE and "postgres" in e.value.message
        ext._run(
            ctl,
            "-D",
            str(ext.pgdata),
            "-w",
            "-l",
            str(ext.base / "log"),
            "-o",
            f"-p {ext.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=",
            "start",
        )
        # A failed call may find another dead pooled connection; then the pool heals.
        s = None
        for _ in range(3):
            try:
                s = await store.get("u", "s")
                break
            except errors.SessionStoreError as e:
                assert e.code == errors.UNAVAILABLE
        assert s is not None and s.server_name is None  # the failed update wrote nothing
        assert await store.list_ids("u") == ["s"]  # nor did the failed create
        await store.close()
    finally:
        ext.stop()


async def test_redis_going_away(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    store = RedisStore(server.url)
    try:
        await store.create(new("s"))
        server.stop()
        for call in (store.get("u", "s"), store.patch_credentials("u", "s", {"client_id": "c"})):
            with pytest.raises(errors.SessionStoreError) as e:
                await call
            assert e.value.code == errors.UNAVAILABLE and "redis" in e.value.message
    finally:
        server.stop()
        await store.close()


async def test_supabase_going_away(tmp_path: Path) -> None:
    from supalite.sessions.backends.supabase import SupabaseStore
    from tests.helpers import LiveServer
    from tests.sessions.conftest import sessions_project

    server = LiveServer(sessions_project(tmp_path, with_cron=False)).start()
    store = SupabaseStore(server.url, server.service_key)
    try:
        await store.create(new("s"))
        server.stop()
        for call in (store.get("u", "s"), store.update("u", "s", {"server_name": "x"})):
            with pytest.raises(errors.SessionStoreError) as e:
                await call
            assert e.value.code == errors.UNAVAILABLE and server.url in e.value.message
    finally:
        server.stop()
        await store.close()


async def test_sqlite_file_that_cannot_be_opened(tmp_path: Path) -> None:
    from supalite.sessions.backends.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "missing-dir" / "s.db")
    with pytest.raises(errors.SessionStoreError) as e:
        await store.get("u", "s")
    assert e.value.code == errors.UNAVAILABLE and "missing-dir" in e.value.message
