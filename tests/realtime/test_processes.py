"""Two supalite processes on one database (a server reached by DATABASE_URL, as a managed one
would be): broadcasts, presence and Postgres changes reach every subscriber exactly once,
whichever process it is connected to, and the change capture survives losing its process."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import ExternalPostgres, LiveServer
from tests.realtime.conftest import RT, Socket, db_server_pair, init_project, unique

SECRET = "realtime-two-processes-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def pair(
    shared_db: ExternalPostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RT, RT]]:
    yield from db_server_pair(tmp_path_factory, shared_db, SECRET, "proc")


def bcast(event: str) -> Any:
    return lambda m: m["event"] == "broadcast" and m["payload"].get("event") == event


async def test_broadcast_across_processes(pair: tuple[RT, RT]) -> None:
    a_rt, b_rt = pair
    a, b = await a_rt.socket(), await b_rt.socket("2.0.0")
    try:
        name = unique()
        a_ref, _ = await a.join(name)
        b_ref, _ = await b.join(name)
        await a.send(
            f"realtime:{name}",
            "broadcast",
            {"type": "broadcast", "event": "hi", "payload": {"from": "a"}},
            join_ref=a_ref,
        )
        assert (await b.expect(bcast("hi")))["payload"]["payload"] == {"from": "a"}
        big = "y" * 30_000  # over NOTIFY's limit: relayed through the overflow table
        await b.send(
            f"realtime:{name}",
            "broadcast",
            {"type": "broadcast", "event": "big", "payload": {"big": big}},
            join_ref=b_ref,
        )
        assert (await a.expect(bcast("big")))["payload"]["payload"]["big"] == big
        await a.nothing(bcast("hi"), wait=0.5)  # self: false, and no echo from the other process
        await b.nothing(bcast("big"), wait=0.5)
        await b.nothing(bcast("hi"), wait=0.1)  # exactly once
    finally:
        await a.close()
        await b.close()


async def test_changes_once_per_subscriber_on_each_process(pair: tuple[RT, RT]) -> None:
    a_rt, b_rt = pair
    await a_rt.sql(
        "create table if not exists public.shared (id int primary key, v text);"
        "alter publication supabase_realtime add table public.shared"
    )
    socks: list[Socket] = [await a_rt.socket(), await b_rt.socket(), await b_rt.socket("2.0.0")]
    try:
        for s in socks:
            name = unique()
            _, reply = await s.join(
                name,
                {"postgres_changes": [{"event": "INSERT", "schema": "public", "table": "shared"}]},
            )
            assert reply["status"] == "ok"
            await s.event(f"realtime:{name}", "system")
        await a_rt.sql("insert into shared select i, 'v' from generate_series(1, 30) i")
        for s in socks:
            ids = [
                (await s.expect(lambda m: m["event"] == "postgres_changes"))["payload"]["data"][
                    "record"
                ]["id"]
                for _ in range(30)
            ]
            assert ids == list(range(1, 31))
            await s.nothing(lambda m: m["event"] == "postgres_changes", wait=0.5)
    finally:
        for s in socks:
            await s.close()


async def test_presence_across_processes_and_capture_takeover(pair: tuple[RT, RT]) -> None:
    a_rt, b_rt = pair
    a, b = await a_rt.socket(), await b_rt.socket()
    name = unique()
    topic = f"realtime:{name}"
    try:
        a_ref, _ = await a.join(name, {"presence": {"key": "on-a", "enabled": True}})
        await b.join(
            name,
            {
                "presence": {"key": "on-b", "enabled": True},
                "postgres_changes": [{"event": "INSERT", "schema": "public", "table": "shared"}],
            },
        )
        await a.send(
            topic,
            "presence",
            {"type": "presence", "event": "track", "payload": {"where": "a"}},
            join_ref=a_ref,
        )
        diff = (await b.event(topic, "presence_diff"))["payload"]
        assert diff["joins"]["on-a"]["metas"][0]["where"] == "a"
        # A late joiner on the other process sees it in presence_state.
        c = await b_rt.socket("2.0.0")
        await c.join(name, {"presence": {"key": "late", "enabled": True}})
        state = (await c.event(topic, "presence_state"))["payload"]
        assert state["on-a"]["metas"][0]["where"] == "a"
        await c.close()

        # Process A dies without a word: its presences are reaped and announced, and the
        # change capture (A held it, having started first) is taken over by B.
        assert a_rt.server.proc is not None
        a_rt.server.proc.send_signal(signal.SIGKILL)
        await b_rt.sql("insert into shared values (1000, 'after the kill')")
        got = await b.expect(lambda m: m["event"] == "postgres_changes", timeout=30)
        assert got["payload"]["data"]["record"] == {"id": 1000, "v": "after the kill"}
        leave = await b.expect(
            lambda m: m["event"] == "presence_diff" and "on-a" in m["payload"]["leaves"],
            timeout=60,
        )
        assert leave["payload"]["leaves"]["on-a"]["metas"][0]["where"] == "a"
    finally:
        await b.close()


def test_workers_deliver_exactly_once(tmp_path_factory: pytest.TempPathFactory) -> None:
    """`--workers 2`: sockets land on either worker; each hears every message once."""
    root = tmp_path_factory.mktemp("workers")
    init_project(root)
    server = LiveServer(root, "--workers", "2").start()
    rt = RT(server)

    async def scenario() -> None:
        from tests.realtime.conftest import wait_http_ok

        await wait_http_ok(server.url + "/health")
        await rt.sql("create table public.w (id int primary key);"
                     "alter publication supabase_realtime add table public.w")  # fmt: skip
        name = unique()
        socks = [await rt.socket() for _ in range(8)]
        try:
            refs = []
            for s in socks:
                ref, reply = await s.join(name, {"postgres_changes": [
                    {"event": "INSERT", "schema": "public", "table": "w"}]})  # fmt: skip
                assert reply["status"] == "ok"
                await s.event(f"realtime:{name}", "system")
                refs.append(ref)
            await socks[0].send(f"realtime:{name}", "broadcast",
                                {"type": "broadcast", "event": "w", "payload": {}},
                                join_ref=refs[0])  # fmt: skip
            await rt.sql("insert into w values (1)")
            for s in socks[1:]:
                await s.expect(bcast("w"))
            for s in socks:
                await s.expect(lambda m: m["event"] == "postgres_changes")
            for s in socks:
                await s.nothing(lambda m: m["event"] in ("broadcast", "postgres_changes"),
                                wait=0.3)  # fmt: skip
        finally:
            for s in socks:
                await s.close()

    try:
        asyncio.run(scenario())
    finally:
        server.stop()
