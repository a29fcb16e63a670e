"""Real backends for the session store: a file, a SQLite file, a database of the embedded
PostgreSQL, a `redis-server` started here, and a live supalite for the Supabase backend."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import redis

from supalite.cli import main as cli
from supalite.db.embedded import EmbeddedPostgres
from supalite.sessions.backends.file import FileStore
from supalite.sessions.backends.memory import MemoryStore
from supalite.sessions.backends.postgres import PostgresStore
from supalite.sessions.backends.redis import RedisStore
from supalite.sessions.backends.sqlite import SqliteStore
from supalite.sessions.backends.supabase import SupabaseStore
from supalite.sessions.crypto import Cipher
from supalite.sessions.store import SessionStore
from tests.helpers import LiveServer, free_port, supalite

KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
BACKENDS = ["memory", "file", "sqlite", "postgres", "redis", "supabase"]
PERSISTENT = [b for b in BACKENDS if b != "memory"]


@dataclass
class Clock:
    """A clock the test moves; every store reads time from it."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


class RedisServer:
    def __init__(self, base: Path) -> None:
        self.port = free_port()
        self.base = base
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (`make test-deps` installs it)")
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.base),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port).ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


async def fresh_database(pg: EmbeddedPostgres) -> str:
    """A new database of the embedded cluster with the session tables installed."""
    name = "sessions_" + uuid.uuid4().hex[:12]
    admin = await asyncpg.connect(pg.local_url())
    try:
        await admin.execute(f'create database "{name}"')
    finally:
        await admin.close()
    url = pg.tcp_url.rsplit("/", 1)[0] + "/" + name
    store = PostgresStore(url)
    await store.install_schema()
    await store.close()
    return url


@pytest.fixture(scope="session")
def pg_url(embedded_pg: EmbeddedPostgres) -> str:
    return asyncio.run(fresh_database(embedded_pg))


def sessions_project(root: Path, with_cron: bool | None = None) -> Path:
    """`supalite init` + `supalite sessions init`, on free ports."""
    assert supalite("init", cwd=root).returncode == 0
    cfg = root / "supabase" / "config.toml"
    text = cfg.read_text().replace("port = 54321", f"port = {free_port()}")
    cfg.write_text(text.replace("port = 54322", f"port = {free_port()}"))
    assert cli(["sessions", "init", "--workdir", str(root)]) == 0
    if with_cron is None:
        with_cron = cron_available()
    if not with_cron:
        for p in (root / "supabase" / "migrations").glob("*_add_session_cleanup_cron.sql"):
            p.unlink()
    return root


def cron_available() -> bool:
    """supalite's pg_cron emulation is another piece of work; its bootstrap file marks it."""
    import supalite.db

    return (Path(supalite.db.__file__).parent / "sql" / "bootstrap" / "0004_cron.sql").exists()


@pytest.fixture(scope="session")
def supabase_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = sessions_project(tmp_path_factory.mktemp("supalite"), with_cron=False)
    server = LiveServer(root).start()
    yield server
    server.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cipher() -> Cipher:
    return Cipher(bytes.fromhex(KEY))


def infra(kind: str, request: pytest.FixtureRequest) -> str:
    """Start what the backend needs (outside the event loop: some fixtures run their own)."""
    if kind == "postgres":
        url: str = request.getfixturevalue("pg_url")
        return url
    if kind == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        return server.url
    if kind == "supabase":
        live: LiveServer = request.getfixturevalue("supabase_server")
        return live.url + " " + live.service_key
    return ""


def make_store(kind: str, where: str, tmp_path: Path, clock: Clock, cipher: Cipher) -> SessionStore:
    if kind == "memory":
        return MemoryStore(clock=clock)
    if kind == "file":
        return FileStore(tmp_path / "sessions.json", cipher=cipher, clock=clock)
    if kind == "sqlite":
        return SqliteStore(tmp_path / "sessions.db", cipher=cipher, clock=clock)
    if kind == "postgres":
        return PostgresStore(where, cipher=cipher, clock=clock)
    if kind == "redis":
        return RedisStore(where, prefix="t" + secrets.token_hex(4), cipher=cipher, clock=clock)
    url, key = where.split(" ")
    return SupabaseStore(url, key, cipher=cipher, clock=clock)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param, infra(request.param, request)


@pytest.fixture(params=PERSISTENT)
def persistent_backend(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param, infra(request.param, request)


async def _opened(
    kind: str, where: str, tmp_path: Path, clock: Clock, cipher: Cipher
) -> SessionStore:
    s = make_store(kind, where, tmp_path, clock, cipher)
    await s.init()
    if kind in ("postgres", "supabase"):
        await s.clear_all()  # one database per run: each test starts empty
    return s


@pytest.fixture
async def store(
    backend: tuple[str, str], tmp_path: Path, clock: Clock, cipher: Cipher
) -> AsyncIterator[SessionStore]:
    s = await _opened(*backend, tmp_path, clock, cipher)
    yield s
    await s.close()


@pytest.fixture
async def persistent(
    persistent_backend: tuple[str, str], tmp_path: Path, clock: Clock, cipher: Cipher
) -> AsyncIterator[SessionStore]:
    s = await _opened(*persistent_backend, tmp_path, clock, cipher)
    yield s
    await s.close()


@pytest.fixture(scope="session")
def supabase_server_without_tables(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("bare")
    assert supalite("init", cwd=root).returncode == 0
    cfg = root / "supabase" / "config.toml"
    text = cfg.read_text().replace("port = 54321", f"port = {free_port()}")
    cfg.write_text(text.replace("port = 54322", f"port = {free_port()}"))
    server = LiveServer(root).start()
    yield server.url + " " + server.service_key
    server.stop()
