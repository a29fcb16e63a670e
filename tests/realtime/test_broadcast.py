"""Broadcast (self, ack, binary frames, REST, SQL), presence, and private channels."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from supalite.realtime import protocol
from tests.realtime.conftest import ALICE, BOB, RT, py_client, unique, until


def is_broadcast(event: str) -> Any:
    return lambda m: m["event"] == "broadcast" and m["payload"].get("event") == event


async def test_broadcast_self_and_ack(sockets: Any) -> None:
    a, b = await sockets(), await sockets()
    name = unique()
    topic = f"realtime:{name}"
    a_ref, _ = await a.join(name, {"broadcast": {"self": False, "ack": True}})
    b_ref, _ = await b.join(name, {"broadcast": {"self": True, "ack": False}})
    msg = {"type": "broadcast", "event": "hello", "payload": {"n": 1}}
    ref = await a.send(topic, "broadcast", msg, join_ref=a_ref)
    assert await a.reply(ref) == {"status": "ok", "response": {}}  # ack
    got = await b.expect(is_broadcast("hello"))
    assert got["payload"] == msg and got["ref"] is None
    await a.nothing(is_broadcast("hello"))  # self: false
    # b has self: true and no ack: it hears itself, and gets no reply.
    b_msg = {"type": "broadcast", "event": "again", "payload": {"n": 2}}
    ref = await b.send(topic, "broadcast", b_msg, join_ref=b_ref)
    assert (await b.expect(is_broadcast("again")))["payload"] == b_msg
    assert (await a.expect(is_broadcast("again")))["payload"] == b_msg
    await b.nothing(lambda m: m["event"] == "phx_reply" and m["ref"] == ref, wait=0.5)


async def test_other_topics_hear_nothing(sockets: Any) -> None:
    a, b = await sockets(), await sockets()
    one, two = unique(), unique()
    a_ref, _ = await a.join(one)
    await b.join(two)
    await a.send(
        f"realtime:{one}",
        "broadcast",
        {"type": "broadcast", "event": "x", "payload": {}},
        join_ref=a_ref,
    )
    await b.nothing(is_broadcast("x"))


async def test_binary_broadcast_frames(sockets: Any) -> None:
    sender, v2, v1 = await sockets("2.0.0"), await sockets("2.0.0"), await sockets("1.0.0")
    name = unique()
    topic = f"realtime:{name}"
    ref, _ = await sender.join(name)
    await v2.join(name)
    await v1.join(name)
    await sender.ws.send(protocol.encode_push(topic, "json-ev", b'{"k":"v"}', join_ref=ref))
    got = await v2.expect(is_broadcast("json-ev"))
    assert got.get("binary") and got["payload"] == {
        "type": "broadcast",
        "event": "json-ev",
        "payload": {"k": "v"},
    }
    got = await v1.expect(is_broadcast("json-ev"))
    assert got["payload"] == {"type": "broadcast", "event": "json-ev", "payload": {"k": "v"}}
    await sender.ws.send(
        protocol.encode_push(topic, "bin-ev", b"\x00\x01\xfe", join_ref=ref, is_json=False)
    )
    got = await v2.expect(is_broadcast("bin-ev"))
    assert got["payload"]["payload"] == b"\x00\x01\xfe"
    await v1.nothing(is_broadcast("bin-ev"))  # vsn 1.0.0 cannot carry it


async def test_events_per_second_limit(sockets: Any) -> None:
    a = await sockets()
    name = unique()
    topic = f"realtime:{name}"
    ref, _ = await a.join(name)
    for i in range(40):  # the project's realtime.params.eventsPerSecond is 10
        await a.send(
            topic,
            "broadcast",
            {"type": "broadcast", "event": "e", "payload": {"i": i}},
            join_ref=ref,
        )
    system = await a.event(topic, "system")
    assert system["payload"]["message"] == "Too many messages per second"
    await a.event(topic, "phx_close")


async def test_rest_broadcast(sockets: Any, rt: RT) -> None:
    a = await sockets()
    name = unique()
    await a.join(name)
    url = rt.server.url + "/realtime/v1/api/broadcast"
    body = {"messages": [{"topic": name, "event": "from-rest", "payload": {"x": 1}}]}
    r = httpx.post(url, json=body, headers={"apikey": rt.server.anon_key})
    assert r.status_code == 202, r.text
    got = await a.expect(is_broadcast("from-rest"))
    assert got["payload"] == {"type": "broadcast", "event": "from-rest", "payload": {"x": 1}}
    r = httpx.post(
        f"{rt.server.url}/realtime/v1/api/broadcast/{name}/events/http-ev",
        content=b'{"y":2}',
        headers={"apikey": rt.server.anon_key, "content-type": "application/json"},
    )
    assert r.status_code == 202, r.text
    assert (await a.expect(is_broadcast("http-ev")))["payload"]["payload"] == {"y": 2}
    assert httpx.post(url, json=body).status_code == 401
    for bad in (b"nope", b"{}", b'{"messages": [{"event": "x"}]}'):
        r = httpx.post(url, content=bad, headers={"apikey": rt.server.anon_key})
        assert r.status_code in (400, 422), r.text


async def test_send_from_sql(sockets: Any, rt: RT) -> None:
    a = await sockets("2.0.0")
    name = unique()
    await a.join(name)
    await rt.sql(f"select realtime.send('{{\"from\": \"db\"}}'::jsonb, 'db-ev', '{name}', false)")
    got = await a.expect(is_broadcast("db-ev"))
    assert got["payload"] == {"type": "broadcast", "event": "db-ev", "payload": {"from": "db"}}
    # Over NOTIFY's 8000 bytes: through the overflow table, still delivered.
    big = "x" * 20000
    await rt.sql(
        f"select realtime.send(jsonb_build_object('big', '{big}'), 'big-ev', '{name}', false)"
    )
    got = await a.expect(is_broadcast("big-ev"))
    assert got["payload"]["payload"]["big"] == big


def presence_event(event: str) -> Any:
    return lambda m: m["event"] == event


async def test_presence_track_untrack_and_socket_death(sockets: Any) -> None:
    a, b = await sockets(), await sockets("2.0.0")
    name = unique()
    topic = f"realtime:{name}"
    a_ref, _ = await a.join(name, {"presence": {"key": "alice", "enabled": True}})
    assert (await a.event(topic, "presence_state"))["payload"] == {}
    ref = await a.send(
        topic,
        "presence",
        {"type": "presence", "event": "track", "payload": {"status": "online"}},
        join_ref=a_ref,
    )
    assert await a.reply(ref) == {"status": "ok", "response": {}}
    diff = (await a.event(topic, "presence_diff"))["payload"]
    assert list(diff["joins"]) == ["alice"] and diff["leaves"] == {}
    meta = diff["joins"]["alice"]["metas"][0]
    assert meta["status"] == "online" and meta["phx_ref"]

    # A later joiner gets the state, keyed and shaped as realtime-js's presenceState() reads it.
    await b.join(name, {"presence": {"key": "bob", "enabled": True}})
    state = (await b.event(topic, "presence_state"))["payload"]
    assert state == {"alice": {"metas": [meta]}}

    # Tracking again replaces the meta: a join with phx_ref_prev and a leave of the old one.
    await a.send(
        topic,
        "presence",
        {"type": "presence", "event": "track", "payload": {"status": "away"}},
        join_ref=a_ref,
    )
    diff = (await b.event(topic, "presence_diff"))["payload"]
    new = diff["joins"]["alice"]["metas"][0]
    assert new["status"] == "away" and new["phx_ref_prev"] == meta["phx_ref"]
    assert diff["leaves"] == {"alice": {"metas": [meta]}}

    ref = await a.send(topic, "presence", {"type": "presence", "event": "untrack"}, join_ref=a_ref)
    assert await a.reply(ref) == {"status": "ok", "response": {}}
    diff = (await b.event(topic, "presence_diff"))["payload"]
    assert diff["joins"] == {} and list(diff["leaves"]) == ["alice"]

    # Track again, then the socket dies: everyone else sees the leave.
    await a.send(
        topic,
        "presence",
        {"type": "presence", "event": "track", "payload": {"status": "back"}},
        join_ref=a_ref,
    )
    await b.event(topic, "presence_diff")
    await a.ws.close()
    diff = (await b.event(topic, "presence_diff"))["payload"]
    assert diff["leaves"]["alice"]["metas"][0]["status"] == "back"


def track(payload: Any) -> dict[str, Any]:
    return {"type": "presence", "event": "track", "payload": payload}


async def test_identical_track_is_a_no_op(sockets: Any) -> None:
    """As Supabase (`:no_payload_change`): tracking the payload already tracked is answered
    `ok` and sends no diff; any other payload, even equal in Python, is a new track."""
    a, b = await sockets(), await sockets("2.0.0")
    name = unique()
    topic = f"realtime:{name}"
    a_ref, _ = await a.join(name, {"presence": {"key": "alice", "enabled": True}})
    b_ref, _ = await b.join(name, {"presence": {"key": "bob", "enabled": True}})
    ref = await a.send(topic, "presence", track({"s": "on", "n": 1, "t": True}), join_ref=a_ref)
    assert await a.reply(ref) == {"status": "ok", "response": {}}
    first = (await b.event(topic, "presence_diff"))["payload"]["joins"]["alice"]["metas"][0]
    await a.event(topic, "presence_diff")  # its own

    # The same map (key order aside): answered, and nobody hears of it...
    ref = await a.send(topic, "presence", track({"t": True, "n": 1, "s": "on"}), join_ref=a_ref)
    assert await a.reply(ref) == {"status": "ok", "response": {}}
    # ...so the next diff anyone sees is the next real change, replacing the first meta.
    # 1.0 is not 1 and 1 is not true, as Elixir compares decoded JSON.
    for meta in ({"s": "on", "n": 1.0, "t": True}, {"s": "on", "n": 1.0, "t": 1}):
        await a.send(topic, "presence", track(meta), join_ref=a_ref)
        for s in (a, b):
            diff = (await s.event(topic, "presence_diff"))["payload"]
            (new,) = diff["joins"]["alice"]["metas"]
            assert diff["leaves"] == {"alice": {"metas": [first]}}
            assert new["phx_ref_prev"] == first["phx_ref"]
            assert {k: new[k] for k in meta} == meta
        first = {k: v for k, v in new.items() if k != "phx_ref_prev"}
    await b.nothing(lambda m: m["event"] == "presence_diff", wait=0.3)
    # After an untrack, the same payload is a new track (a channel has 5 presence messages
    # per 30 s: bob's channel does this part).
    for event in ("track", "untrack", "track"):
        msg = track({"s": "in"}) if event == "track" else {"type": "presence", "event": event}
        await b.send(topic, "presence", msg, join_ref=b_ref)
        diff = (await a.event(topic, "presence_diff"))["payload"]
        assert list(diff["joins" if event == "track" else "leaves"]) == ["bob"]


async def test_identical_track_through_realtime_py(rt: RT) -> None:
    """realtime-py's `track()` called again with the same status: the others see no change."""
    a, b = await py_client(rt), await py_client(rt)
    try:
        name = unique()
        seen: list[Any] = []  # alice's status at each presence sync b gets
        cb = b.channel(name, {"config": {"presence": {"key": "bob"}}})
        cb.on_presence_sync(lambda: seen.append(
            [m.get("mood") for m in cb.presence_state().get("alice", [])]))  # fmt: skip
        await cb.subscribe()
        await until(lambda: seen == [[]], "bob's presence_state")
        ca = a.channel(name, {"config": {"presence": {"key": "alice"}}})
        await ca.subscribe()
        await ca.track({"mood": "ok"})
        await ca.track({"mood": "ok"})
        await ca.track({"mood": "away"})
        await until(lambda: ["away"] in seen, "alice away")
        # presence_state at join, then one diff per real change: no leave+join for nothing.
        assert seen == [[], ["ok"], ["away"]]
    finally:
        await a.close()
        await b.close()


PRIVATE_POLICY = f"""
create policy "alice reads her room" on realtime.messages for select to authenticated
  using (realtime.topic() like 'alice-%' and auth.uid() = '{ALICE}'::uuid);
create policy "alice writes her room" on realtime.messages for insert to authenticated
  with check (realtime.topic() like 'alice-%' and auth.uid() = '{ALICE}'::uuid
              and extension = 'broadcast');
"""


async def test_private_channels(sockets: Any, rt: RT) -> None:
    await rt.sql(PRIVATE_POLICY)
    alice, bob = await sockets(), await sockets()
    name = unique("alice")
    topic = f"realtime:{name}"
    a_ref, reply = await alice.join(name, {"private": True}, token=rt.token(ALICE))
    assert reply["status"] == "ok", reply
    _, reply = await bob.join(name, {"private": True}, token=rt.token(BOB))
    assert reply == {
        "status": "error",
        "response": {
            "reason": "Unauthorized: You do not have permissions to read from this Channel "
            f"topic: {name}"
        },
    }
    # A public channel of the same name is another channel: it hears nothing private.
    await bob.join(name, token=rt.token(BOB))
    msg = {"type": "broadcast", "event": "secret", "payload": {}}
    await alice.send(topic, "broadcast", msg, join_ref=a_ref)
    await bob.nothing(is_broadcast("secret"))
    # Private from SQL reaches alice.
    await rt.sql(f"select realtime.send('{{}}'::jsonb, 'sql-secret', '{name}', true)")
    await alice.expect(is_broadcast("sql-secret"))
    await bob.nothing(is_broadcast("sql-secret"))
    # Her policy lets her send broadcasts but not track presence there.
    ref = await alice.send(
        topic, "presence", {"type": "presence", "event": "track", "payload": {}}, join_ref=a_ref
    )
    assert (await alice.reply(ref))["status"] == "error"
    # The probe rows of the checks never stay behind.
    rows = await rt.fetch("select count(*) from realtime.messages")
    assert rows[0][0] == 0


async def test_private_read_only_cannot_send(sockets: Any, rt: RT) -> None:
    await rt.sql(
        'create policy "bob reads" on realtime.messages for select to authenticated'
        f" using (realtime.topic() like 'bobro-%' and auth.uid() = '{BOB}'::uuid)"
    )
    bob, listener = await sockets(), await sockets()
    name = unique("bobro")
    topic = f"realtime:{name}"
    await listener.join(name, {"private": True}, token=rt.token(BOB))
    b_ref, reply = await bob.join(
        name, {"private": True, "broadcast": {"ack": True}}, token=rt.token(BOB)
    )
    assert reply["status"] == "ok"
    ref = await bob.send(
        topic, "broadcast", {"type": "broadcast", "event": "no", "payload": {}}, join_ref=b_ref
    )
    await listener.nothing(is_broadcast("no"))
    await bob.nothing(lambda m: m["event"] == "phx_reply" and m["ref"] == ref, wait=0.2)
    await asyncio.sleep(0)
    assert json.dumps(reply)  # joined, but without write permission nothing was sent
