"""The API pool (`db/api_pool.py`): waiting, handing over, dropping broken connections,
idling out, preferring a connection whose session has the settings asked for."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from supalite.db.api_pool import ApiConnection, ApiPool, SessionSettings
from supalite.db.bootstrap import authenticator_password
from supalite.db.embedded import EmbeddedPostgres
from tests.conftest import TEST_SECRET

Connect = Callable[[], Awaitable[ApiConnection]]


@pytest.fixture
def connect(embedded_pg: EmbeddedPostgres) -> Connect:
    url = embedded_pg.local_url("authenticator", authenticator_password(TEST_SECRET))
    return lambda: asyncpg.connect(url, connection_class=ApiConnection)  # type: ignore[no-any-return]


@pytest.fixture
async def pool_of_one(connect: Connect) -> AsyncIterator[ApiPool]:
    pool = await ApiPool.open(connect, max_size=1, idle_timeout=60)
    yield pool
    await pool.close()


async def _pid(conn: ApiConnection) -> int:
    return int(await conn.fetchval("select pg_backend_pid()"))


async def test_a_full_pool_hands_a_released_connection_to_the_waiter(
    pool_of_one: ApiPool,
) -> None:
    async with pool_of_one._acquire() as first:
        pid = await _pid(first)
        waiting = asyncio.create_task(_lease_pid(pool_of_one))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # the only connection is in use
    assert await asyncio.wait_for(waiting, 5) == pid


async def _lease_pid(pool: ApiPool) -> int:
    async with pool._acquire() as conn:
        return await _pid(conn)


async def test_a_postgres_error_keeps_the_connection(pool_of_one: ApiPool) -> None:
    async with pool_of_one._acquire() as conn:
        pid = await _pid(conn)
    with pytest.raises(asyncpg.DivisionByZeroError):
        async with pool_of_one._acquire() as conn:
            await conn.fetchval("select 1 / 0")
    assert await _lease_pid(pool_of_one) == pid


async def test_a_cancelled_request_closes_its_connection_and_frees_its_place(
    pool_of_one: ApiPool, admin_conn: asyncpg.Connection
) -> None:
    started = asyncio.Event()
    pids: list[int] = []

    async def slow() -> None:
        async with pool_of_one._acquire() as conn:
            pids.append(await _pid(conn))
            started.set()
            await conn.execute("select pg_sleep(30)")

    task = asyncio.create_task(slow())
    await started.wait()
    waiting = asyncio.create_task(_lease_pid(pool_of_one))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The waiter gets a new connection, not the one a statement may still be running on.
    new_pid = await asyncio.wait_for(waiting, 10)
    assert new_pid != pids[0]
    for _ in range(100):
        gone = await admin_conn.fetchval(
            "select not exists (select from pg_stat_activity where pid = $1)", pids[0]
        )
        if gone:
            break
        await asyncio.sleep(0.05)
    assert gone


async def test_a_connection_left_in_a_transaction_is_not_reused(pool_of_one: ApiPool) -> None:
    async with pool_of_one._acquire() as conn:
        pid = await _pid(conn)
        await conn.execute("begin")
    assert await _lease_pid(pool_of_one) != pid


async def test_a_waiter_cancelled_while_waiting_takes_nothing(pool_of_one: ApiPool) -> None:
    async with pool_of_one._acquire() as first:
        pid = await _pid(first)
        waiting = asyncio.create_task(_lease_pid(pool_of_one))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    assert await _lease_pid(pool_of_one) == pid


async def test_a_failed_connect_frees_its_place(connect: Connect) -> None:
    failures = [ConnectionRefusedError("first attempt")]

    async def flaky() -> ApiConnection:
        if failures:
            raise failures.pop()
        return await connect()

    pool = ApiPool(flaky, max_size=1, idle_timeout=60)
    try:
        with pytest.raises(ConnectionRefusedError):
            await _lease_pid(pool)
        assert await _lease_pid(pool) > 0  # the place was not lost with the failed attempt
    finally:
        await pool.close()


async def test_idle_connections_are_closed_after_the_idle_timeout(connect: Connect) -> None:
    pool = await ApiPool.open(connect, max_size=2, idle_timeout=0.2)
    try:
        async with pool._acquire() as conn:
            pass
        for _ in range(100):
            if conn.is_closed():
                break
            await asyncio.sleep(0.05)
        assert conn.is_closed()
        assert await _lease_pid(pool) > 0  # a new one is opened on demand
    finally:
        await pool.close()


async def test_a_read_gets_the_connection_that_has_its_settings(connect: Connect) -> None:
    pool = await ApiPool.open(connect, max_size=3, idle_timeout=60)
    try:
        mine, other = ("alice",), ("bob",)
        leases = [pool._acquire() for _ in range(3)]
        a, b, c = [await lease.__aenter__() for lease in leases]
        a.remember_session(SessionSettings(mine, True, "d1"))
        b.remember_session(SessionSettings(other, True, "d2"))
        c.remember_session(None)
        pids = [await _pid(x) for x in (a, b, c)]
        for lease in leases:  # a first, c last: c would be taken first without a preference
            await lease.__aexit__(None, None, None)
        async with pool._acquire((mine, True)) as conn:
            assert await _pid(conn) == pids[0]
        async with pool._acquire((("carol",), True)) as conn:
            assert await _pid(conn) == pids[0]  # no match: the most recently used (a, again)
    finally:
        await pool.close()


async def test_closing_the_pool_fails_its_waiters(connect: Connect) -> None:
    pool = await ApiPool.open(connect, max_size=1, idle_timeout=60)
    async with pool._acquire() as conn:
        waiting = asyncio.create_task(_lease_pid(pool))
        await asyncio.sleep(0.05)
        await pool.close()
        with pytest.raises(asyncpg.InterfaceError):
            await waiting
    for _ in range(100):  # given back to a closed pool: closed
        if conn.is_closed():
            break
        await asyncio.sleep(0.05)
    assert conn.is_closed()
    with pytest.raises(asyncpg.InterfaceError):
        await _lease_pid(pool)


def test_what_a_session_serves() -> None:
    caller = ("public", "authenticated", '{"sub":"a"}')
    read = SessionSettings((*caller, "GET", "/rest/v1/t", "{}"), True, "d")
    write = SessionSettings((*caller, "POST", "/rest/v1/t", "{}"), False, "d")
    # A read needs all of its settings (its digest covers them), and a read-only session.
    assert read.serves((*caller, "GET", "/rest/v1/t", "{}"), True)
    assert not read.serves((*caller, "GET", "/rest/v1/u", "{}"), True)
    assert not write.serves((*caller, "POST", "/rest/v1/t", "{}"), True)
    assert not read._replace(digest=None).serves(read.values, True)
    # An insert needs its caller's (it sets its own method, path and headers), read-write.
    assert write.serves((*caller, "POST", "/rest/v1/u", '{"x":"1"}'), False)
    assert not read.serves((*caller, "POST", "/rest/v1/t", "{}"), False)
    other = ("public", "authenticated", '{"sub":"b"}')
    assert not write.serves((*other, "POST", "/rest/v1/t", "{}"), False)


async def test_an_insert_gets_the_connection_that_has_its_caller(connect: Connect) -> None:
    pool = await ApiPool.open(connect, max_size=2, idle_timeout=60)
    try:
        mine = ("public", "anon", "{}", "POST", "/rest/v1/t", "{}")
        leases = [pool._acquire() for _ in range(2)]
        a, b = [await lease.__aenter__() for lease in leases]
        a.remember_session(SessionSettings(mine, False))
        b.remember_session(SessionSettings(mine, True, "d"))  # the same, but read-only
        pids = [await _pid(x) for x in (a, b)]
        for lease in leases:  # b last: taken first without a preference
            await lease.__aexit__(None, None, None)
        other_request = (*mine[:3], "POST", "/rest/v1/u", '{"x":"1"}')
        async with pool._acquire((other_request, False)) as conn:
            assert await _pid(conn) == pids[0]
    finally:
        await pool.close()
