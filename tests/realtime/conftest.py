"""A live supalite per test module, and a small Phoenix websocket client to drive it.

The client speaks the wire format directly (vsn 1.0.0 objects or 2.0.0 arrays, binary frames)
so the tests see exactly what realtime-js and realtime-py would receive.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
import websockets

from realtime import AsyncRealtimeClient
from supalite.realtime import protocol
from tests.auth.conftest import start_server
from tests.helpers import ExternalPostgres, LiveServer, free_port, supalite

ALICE = "11111111-1111-1111-1111-111111111111"
BOB = "22222222-2222-2222-2222-222222222222"


@dataclass
class RT:
    server: LiveServer

    @property
    def db_url(self) -> str:
        return self.server.info["DB URL"]

    @property
    def secret(self) -> str:
        return self.server.info["JWT secret"]

    def token(
        self, sub: str | None = None, role: str = "authenticated", ttl: float = 3600, **extra: Any
    ) -> str:
        now = time.time()
        claims: dict[str, Any] = {"role": role, "iat": int(now), "exp": int(now + ttl), **extra}
        if sub:
            claims.update(sub=sub, aud="authenticated")
        return jwt.encode(claims, self.secret, algorithm="HS256")

    def ws_url(self, vsn: str | None = "1.0.0", apikey: str | None = None) -> str:
        base = self.server.url.replace("http://", "ws://") + "/realtime/v1/websocket"
        q = [f"apikey={apikey or self.server.anon_key}"]
        if vsn:
            q.append(f"vsn={vsn}")
        return base + "?" + "&".join(q)

    async def socket(self, vsn: str = "1.0.0", apikey: str | None = None) -> Socket:
        ws = await websockets.connect(self.ws_url(vsn, apikey), max_size=None)
        return Socket(ws, vsn)

    async def sql(self, statement: str) -> None:
        """Statements as the database owner, for set-up."""
        conn = await asyncpg.connect(self.db_url)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.db_url)
        try:
            rows: list[asyncpg.Record] = await conn.fetch(query, *args)
            return rows
        finally:
            await conn.close()


@dataclass
class Socket:
    ws: Any
    vsn: str
    inbox: list[Any] = field(default_factory=list)
    _ref: int = 0

    def next_ref(self) -> str:
        self._ref += 1
        return str(self._ref)

    async def send(
        self,
        topic: str,
        event: str,
        payload: Any,
        ref: str | None = None,
        join_ref: str | None = None,
    ) -> str:
        ref = ref or self.next_ref()
        if self.vsn == "2.0.0":
            await self.ws.send(json.dumps([join_ref, ref, topic, event, payload]))
        else:
            await self.ws.send(
                json.dumps(
                    {
                        "topic": topic,
                        "event": event,
                        "payload": payload,
                        "ref": ref,
                        "join_ref": join_ref,
                    }
                )
            )
        return ref

    @staticmethod
    def parse(raw: str | bytes, vsn: str) -> dict[str, Any]:
        if isinstance(raw, bytes):
            f = protocol.decode_user_broadcast(raw)
            return {
                "topic": f.topic,
                "event": f.event,
                "payload": f.payload,
                "ref": None,
                "join_ref": None,
                "binary": True,
            }
        data = json.loads(raw)
        if vsn == "2.0.0":
            assert isinstance(data, list) and len(data) == 5, data
            jr, ref, topic, event, payload = data
            return {"topic": topic, "event": event, "payload": payload, "ref": ref, "join_ref": jr}
        assert isinstance(data, dict), data
        return dict(data)

    async def expect(
        self, match: Callable[[dict[str, Any]], bool], timeout: float = 10
    ) -> dict[str, Any]:
        """The first message (already received or next) that matches."""
        for i, m in enumerate(self.inbox):
            if match(m):
                del self.inbox[i]
                return m
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching message; got {self.inbox}")
            try:
                raw = await asyncio.wait_for(self.ws.recv(), left)
            except TimeoutError:
                continue
            m = self.parse(raw, self.vsn)
            if match(m):
                return m
            self.inbox.append(m)

    async def nothing(self, match: Callable[[dict[str, Any]], bool], wait: float = 1.0) -> None:
        """Assert no matching message arrives within `wait` seconds."""
        try:
            m = await self.expect(match, wait)
        except AssertionError:
            return
        raise AssertionError(f"unexpected message {m}")

    async def reply(self, ref: str, timeout: float = 10) -> dict[str, Any]:
        m = await self.expect(lambda m: m["event"] == "phx_reply" and m["ref"] == ref, timeout)
        payload: dict[str, Any] = m["payload"]
        return payload

    async def join(
        self, name: str, config: dict[str, Any] | None = None, token: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        payload: dict[str, Any] = {
            "config": {
                "broadcast": {"self": False, "ack": False},
                "presence": {"key": "", "enabled": False},
                "postgres_changes": [],
                "private": False,
                **(config or {}),
            }
        }
        if token:
            payload["access_token"] = token
        ref = self.next_ref()
        await self.send(f"realtime:{name}", "phx_join", payload, ref, ref)
        return ref, await self.reply(ref)

    async def event(self, topic: str, event: str, timeout: float = 10) -> dict[str, Any]:
        m = await self.expect(lambda m: m["topic"] == topic and m["event"] == event, timeout)
        return m

    async def close(self) -> None:
        await self.ws.close()


def wait_for_table(server: LiveServer, table: str) -> None:
    """The Data API reloads its schema cache after DDL on its own time; wait for it."""
    deadline = time.monotonic() + 30
    while httpx.get(f"{server.url}/rest/v1/{table}?limit=0",
                    headers={"apikey": server.anon_key}).status_code != 200:  # fmt: skip
        assert time.monotonic() < deadline, f"{table} never appeared in the Data API"
        time.sleep(0.1)


async def wait_http_ok(url: str, timeout: float = 60) -> None:
    """Until `url` answers 200 (e.g. every worker of `--workers N` has started)."""
    deadline = time.monotonic() + timeout

    async def status(c: httpx.AsyncClient) -> int:
        try:
            return (await c.get(url)).status_code
        except httpx.TransportError:
            return 0

    async with httpx.AsyncClient(timeout=10) as c:
        for _ in range(20):  # several requests: each worker answers some of them
            while await status(c) != 200:
                assert time.monotonic() < deadline, f"{url} never answered 200"
                await asyncio.sleep(0.1)


def realtime_project(root: Path, edit: Callable[[str], str] = lambda s: s) -> LiveServer:
    return start_server(root, edit)


def init_project(root: Path) -> None:
    """`supalite init` in `root`, on free ports."""
    assert supalite("init", cwd=root).returncode == 0
    cfg = root / "supabase" / "config.toml"
    text = cfg.read_text().replace("port = 54321", f"port = {free_port()}")
    cfg.write_text(text.replace("port = 54322", f"port = {free_port()}"))


def start_rt(root: Path, config: dict[str, Any] | None = None, **env: str) -> RT:
    """A live server of its own, with realtime limits set by config JSON and/or env."""
    init_project(root)
    args: list[str] = []
    if config is not None:
        path = root / "supalite.json"
        path.write_text(json.dumps({"supabase": config}))
        args = ["--config", str(path)]
    return RT(LiveServer(root, *args, env=env).start())


def serving(rt: RT) -> Iterator[RT]:
    """`rt` until the module fixture yielding from this is done with it."""
    try:
        yield rt
    finally:
        rt.server.stop()


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RT]:
    server = realtime_project(tmp_path_factory.mktemp("realtime"))
    try:
        yield RT(server)
    finally:
        server.stop()
        if os.environ.get("RT_DEBUG"):  # the server's log, for debugging a failing module
            print("".join(server.output))


@pytest.fixture
async def sockets(rt: RT) -> AsyncIterator[Callable[..., Any]]:
    """Open sockets for a test; all closed at its end."""
    opened: list[Socket] = []

    async def make(vsn: str = "1.0.0", apikey: str | None = None) -> Socket:
        s = await rt.socket(vsn, apikey)
        opened.append(s)
        return s

    yield make
    for s in opened:
        await s.close()


def unique(prefix: str = "room") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def py_client(rt: RT) -> AsyncRealtimeClient:
    """A connected realtime-py client (supabase-py's), as an app would open it."""
    c = AsyncRealtimeClient(f"{rt.server.url}/realtime/v1", rt.server.anon_key,
                            auto_reconnect=False)  # fmt: skip
    await c.connect()
    return c


async def until(ready: Callable[[], bool], what: str, timeout: float = 10) -> None:
    """Wait for a client's callbacks to have seen something (they run on their own time)."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, f"never saw {what}"
        await asyncio.sleep(0.05)


# ---------------------------------------------------------------------- several processes


@pytest.fixture(scope="module")
def shared_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExternalPostgres]:
    """A PostgreSQL of its own (with logical decoding) that several supalite processes share."""
    ext = ExternalPostgres(tmp_path_factory.mktemp("rt-shared"), free_port())
    ext.start()

    async def logical() -> None:
        conn = await asyncpg.connect(ext.url)
        await conn.execute("alter system set wal_level = logical")
        await conn.close()

    try:
        asyncio.run(logical())
        ext.restart()
        yield ext
    finally:
        ext.stop()


def db_server(root: Path, db: ExternalPostgres, secret: str, **env: str) -> LiveServer:
    """A supalite process on `db` (as on a managed database), signing with `secret`."""
    init_project(root)
    server = LiveServer(root, env={"DATABASE_URL": db.url, "JWT_SECRET": secret, **env})
    for name in ("SUPALITE_JWT_SECRET", "SUPALITE_DB_URL"):
        server.env.pop(name, None)
    return server.start()


def db_server_pair(
    tmp_path_factory: pytest.TempPathFactory,
    db: ExternalPostgres,
    secret: str,
    name: str,
    **env: str,
) -> Iterator[tuple[RT, RT]]:
    """Two supalite processes on `db` (`db_server`), for a module fixture to yield."""
    a = db_server(tmp_path_factory.mktemp(f"{name}-a"), db, secret, **env)
    try:
        b = db_server(tmp_path_factory.mktemp(f"{name}-b"), db, secret, **env)
    except BaseException:
        a.stop()
        raise
    try:
        yield RT(a), RT(b)
    finally:
        b.stop()
        a.stop()
