"""Concurrent users per project, as Supabase Realtime limits them (`max_concurrent_users`).

Supabase counts sockets, not channels: a socket is added to `Realtime.UsersCounter` when its
first channel joins and leaves it only when the socket closes.  A socket not yet counted is
refused a join (`ConnectionRateLimitReached: Too many connected users`, the socket stays open)
while the project is at the limit, and a new socket is refused at the handshake (HTTP 429).
The count is the whole cluster's: each node counts its own sockets and hears the others'.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from realtime import RealtimeSubscribeStates
from supalite.config import ConfigError, load_settings
from supalite.realtime.limits import UsersCounter
from tests.helpers import ExternalPostgres
from tests.realtime.conftest import (
    RT,
    Socket,
    db_server_pair,
    py_client,
    serving,
    start_rt,
    unique,
)

LIMITED = "ConnectionRateLimitReached: Too many connected users"
REFUSED = {"status": "error", "response": {"reason": LIMITED}}
SECRET = "realtime-users-limit-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def users_rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RT]:
    root = tmp_path_factory.mktemp("rt-users")
    yield from serving(start_rt(root, TENANT_MAX_CONCURRENT_USERS="2"))


@pytest.fixture(scope="module")
def pair(
    shared_db: ExternalPostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RT, RT]]:
    """Two processes on one database, the limit 2 users for the project as a whole."""
    yield from db_server_pair(tmp_path_factory, shared_db, SECRET, "users",
                              TENANT_MAX_CONCURRENT_USERS="2")  # fmt: skip


async def _refused_at_handshake(rt: RT) -> bool:
    """Is a new socket refused with Supabase's 429?  (An admitted one is closed again.)"""
    try:
        ws = await websockets.connect(rt.ws_url())
    except InvalidStatus as e:
        assert e.response.status_code == 429
        assert json.loads(e.response.body or b"") == {"error": "Too many connected users"}
        return True
    await ws.close()
    return False


async def _admitted(rt: RT) -> bool:
    return not await _refused_at_handshake(rt)


async def _eventually(check: Any, what: str, timeout: float = 30) -> None:
    """Until `check()` holds: the other process hears a count at its next heartbeat."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"never {what}"
        await asyncio.sleep(0.2)


async def _joins(s: Socket) -> bool:
    _, reply = await s.join(unique())
    assert reply["status"] == "ok" or reply == REFUSED, reply
    return bool(reply["status"] == "ok")


# ---------------------------------------------------------------------- the counter itself


def test_counter_counts_sockets_here_and_what_peers_announce() -> None:
    now = [0.0]
    c = UsersCounter(stale_after=20, clock=lambda: now[0])
    a, b = object(), object()
    c.add(a)
    c.add(a)  # a socket is counted once, however many channels it joins
    c.add(b)
    assert (c.local, c.total(), c.counted(a)) == (2, 2, True)
    c.peer("n1", 3)
    c.peer("n2", 1)
    assert c.total() == 6
    c.peer("n2", 0)  # a process that stops says 0
    c.remove(a)
    assert (c.total(), c.counted(a)) == (4, False)
    now[0] = 15
    c.peer("n3", 2)
    now[0] = 21  # n1 has been silent too long: dead, its sockets no longer count
    assert c.total() == 3


def test_setting_from_env_and_json(tmp_path: Path) -> None:
    assert load_settings(tmp_path, env={}).realtime.max_concurrent_users == 200
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"supabase": {"realtime": {"params": {"maxConcurrentUsers": 7}}}}))
    assert load_settings(tmp_path, config_file=path, env={}).realtime.max_concurrent_users == 7
    env = {"TENANT_MAX_CONCURRENT_USERS": "3"}
    assert load_settings(tmp_path, env=env).realtime.max_concurrent_users == 3
    with pytest.raises(ConfigError, match="TENANT_MAX_CONCURRENT_USERS: bad value"):
        load_settings(tmp_path, env={"TENANT_MAX_CONCURRENT_USERS": "0"})


# ---------------------------------------------------------------------- one process


async def test_concurrent_users(users_rt: RT) -> None:
    """Limit 2: sockets count from their first join until they close."""
    s1, s3 = await users_rt.socket(), await users_rt.socket("2.0.0")  # connected, not counted
    py = await py_client(users_rt)
    s2 = await users_rt.socket()
    opened = [s1, s2, s3]
    try:
        assert await _joins(s1) and await _joins(s1)  # one socket, one user
        s2_ref, reply = await s2.join(name := unique())
        assert reply["status"] == "ok"

        # At the limit: a new socket is refused at the handshake...
        assert await _refused_at_handshake(users_rt)
        # ...a connected one's join gets the reason, and the socket stays open...
        _, reply = await s3.join(unique())
        assert reply == REFUSED
        ref = await s3.send("phoenix", "heartbeat", {})
        assert await s3.reply(ref) == {"status": "ok", "response": {}}
        # ...a counted socket still joins more channels...
        assert await _joins(s1)
        # ...and realtime-py reports CHANNEL_ERROR with the reply (and, seeing a rate limit
        # code, would retry in 30 s: closed here).
        states: list[tuple[Any, str]] = []
        await py.channel(unique()).subscribe(lambda st, e: states.append((st, str(e))))
        assert states[0] == (RealtimeSubscribeStates.CHANNEL_ERROR,
                             json.dumps({"reason": LIMITED}))  # fmt: skip
        await py.close()

        # Leaving every channel does not uncount a socket; closing it does.
        ref = await s2.send(f"realtime:{name}", "phx_leave", {}, join_ref=s2_ref)
        assert (await s2.reply(ref))["status"] == "ok"
        _, reply = await s3.join(unique())
        assert reply == REFUSED
        await s2.close()
        await _eventually(lambda: _joins(s3), "admitted after a socket closed", timeout=10)

        # A socket whose join fails is not counted: s1 gone, one place is left, and a failed
        # join does not take it.
        await s1.close()
        await _eventually(lambda: _admitted(users_rt), "a place after s1 closed", timeout=10)
        s4 = await users_rt.socket()
        opened.append(s4)
        _, reply = await s4.join(unique(), token="not-a-jwt")
        assert reply["status"] == "error" and reply != REFUSED
        assert await _admitted(users_rt)
    finally:
        for s in opened:
            await s.close()
        await py.close()


# ---------------------------------------------------------------------- two processes


async def test_concurrent_users_across_processes(pair: tuple[RT, RT]) -> None:
    """Limit 2 for the project: two users on A leave no place on B, and the reverse."""
    a_rt, b_rt = pair
    b0 = await b_rt.socket()  # connected, not yet counted
    a1, a2 = await a_rt.socket(), await a_rt.socket("2.0.0")
    opened = [b0, a1, a2]
    try:
        assert await _joins(a1) and await _joins(a2)
        # B hears A's count at A's next heartbeat: then it refuses new sockets and joins.
        await _eventually(lambda: _refused_at_handshake(b_rt), "refused on B")
        _, reply = await b0.join(unique())
        assert reply == REFUSED
        # A user leaves A: B has a place again once A says so, and b0 takes it.
        await a1.close()
        await _eventually(lambda: _joins(b0), "admitted on B")
        # Now A's second place is B's: A refuses.
        await _eventually(lambda: _refused_at_handshake(a_rt), "refused on A")
    finally:
        for s in opened:
            await s.close()
