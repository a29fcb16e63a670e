"""The embedded cluster: restarts, crashes, stale locks, both kinds of binaries."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from pathlib import Path

import asyncpg
import pytest

from supalite.db.embedded import EmbeddedError, EmbeddedPostgres, find_binaries
from tests.helpers import free_port


async def _exec(url: str, sql: str, *args: object) -> object:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


def q(pg: EmbeddedPostgres, sql: str, *args: object) -> object:
    return asyncio.run(_exec(pg.local_url(), sql, *args))


def _wait_gone(pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        # A killed child stays a zombie until reaped; that counts as gone.
        try:
            if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                return
        except OSError:
            return
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} still running")


@pytest.fixture
def pg(tmp_path: Path) -> EmbeddedPostgres:
    p = EmbeddedPostgres(tmp_path, free_port())
    p.init()
    p.start()
    yield p  # type: ignore[misc]
    p.stop()


def test_system_binaries_preferred_when_present() -> None:
    b = find_binaries()
    assert b.origin == "system"  # this machine has Debian's PostgreSQL (make test installs it)
    assert int(b.version.split(".")[0]) >= 15
    assert find_binaries("pgserver").origin == "pgserver"


def test_data_survives_restart_and_fsync_is_on(pg: EmbeddedPostgres) -> None:
    assert q(pg, "show fsync") == "on"
    q(pg, "create table kept (x int)")
    q(pg, "insert into kept values (42)")
    pg.stop()
    pg.start()
    assert q(pg, "select x from kept") == 42


def test_kill_9_of_postgres_recovers_committed_rows(pg: EmbeddedPostgres) -> None:
    q(pg, "create table acked (x int)")
    for i in range(50):
        q(pg, "insert into acked values ($1)", i)  # each one acknowledged (committed)
    assert pg.process is not None
    pid = pg.process.pid
    os.kill(pid, signal.SIGKILL)
    pg.process.wait(10)
    pg.process = None
    assert (pg.pgdata / "postmaster.pid").exists()  # the stale lock is left behind
    pg.start()
    assert q(pg, "select count(*) from acked") == 50
    assert "not properly shut down" in pg.log_path.read_text()  # it really did crash recovery


def test_stale_lock_with_a_dead_pid(pg: EmbeddedPostgres) -> None:
    pg.stop()
    (pg.pgdata / "postmaster.pid").write_text("999999\n" + str(pg.pgdata) + "\n")
    pg.start()
    assert q(pg, "select 1") == 1


def test_leftover_postmaster_from_a_dead_supervisor_is_replaced(pg: EmbeddedPostgres) -> None:
    assert pg.process is not None
    old = pg.process
    pg.process = None  # as if supalite had died without stopping it
    fresh = EmbeddedPostgres(pg.data_dir, pg.port)
    fresh.start()
    try:
        old.wait(30)  # the earlier postmaster was shut down cleanly
        assert q(fresh, "select 1") == 1
    finally:
        fresh.stop()


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        p = EmbeddedPostgres(tmp_path, port)
        p.init()
        with pytest.raises(EmbeddedError, match=f"database port {port} is already in use"):
            p.start()


def test_pgserver_binaries_work(tmp_path: Path) -> None:
    p = EmbeddedPostgres(tmp_path, free_port(), find_binaries("pgserver"))
    p.init()
    p.start()
    try:
        assert q(p, "select current_setting('server_version_num')::int >= 150000") is True
    finally:
        p.stop()


def test_half_initialised_folder_is_redone(tmp_path: Path) -> None:
    (tmp_path / "pg").mkdir()
    (tmp_path / "pg" / "junk").write_text("from an interrupted initdb")
    p = EmbeddedPostgres(tmp_path, free_port())
    p.init()
    assert p.initialized and not (tmp_path / "pg" / "junk").exists()
