"""Postgres changes to many subscribers at once: RLS stays exact per identity when the checks
are batched (one lookup planned per batch, run once per identity), split over several
connections, and mixed with roles that bypass RLS or have policies of their own."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.realtime.conftest import RT, Socket, unique

SCHEMA = """
create table public.board (
  team int not null, slot text not null, owner uuid not null, body text,
  primary key (team, slot)
);
alter table public.board enable row level security;
-- An initplan: auth.uid() is read once per statement, so each identity needs its own.
create policy "own rows" on public.board for select to authenticated
  using (owner = (select auth.uid()));
grant select on public.board to anon;
create policy "anon sees team 0" on public.board for select to anon using (team = 0);
alter publication supabase_realtime add table public.board;
"""
USERS = 100  # distinct identities: enough for several `realtime_rls` calls at once
SUB = [{"event": "*", "schema": "public", "table": "board"}]


@pytest.fixture(scope="module", autouse=True)
async def schema(rt: RT) -> None:
    await rt.sql(SCHEMA)


def change_on(topic: str, slot: str | None = None) -> Any:
    def match(m: dict[str, Any]) -> bool:
        if m["topic"] != topic or m["event"] != "postgres_changes":
            return False
        return slot is None or m["payload"]["data"]["record"].get("slot") == slot

    return match


async def join(sock: Socket, token: str) -> str:
    name = unique("board")
    _, reply = await sock.join(name, {"postgres_changes": SUB}, token=token)
    assert reply["status"] == "ok", reply
    system = await sock.event(f"realtime:{name}", "system")
    assert system["payload"]["status"] == "ok", system
    return f"realtime:{name}"


async def test_each_of_many_users_sees_exactly_their_rows(sockets: Any, rt: RT) -> None:
    users = [str(uuid.uuid4()) for _ in range(USERS)]
    socks = [await sockets(), await sockets("2.0.0")]  # 50 channels each, one user per channel
    topics = [await join(socks[i % 2], rt.token(u)) for i, u in enumerate(users)]
    service_topic = await join(socks[0], rt.token(role="service_role"))
    anon_topic = await join(socks[1], rt.token(role="anon"))

    # One transaction: one batch, rows for every third user and one for nobody subscribed.
    owners = {i: users[i] for i in range(0, USERS, 3)}
    values = ", ".join(f"({i}, 's{i}', '{u}', 'mine')" for i, u in owners.items())
    await rt.sql(
        "begin;"
        f"insert into board values {values};"
        f"insert into board values (-1, 'nobody', '{uuid.uuid4()}', 'hidden');"
        "commit;"
    )
    for i, u in owners.items():
        got = await socks[i % 2].expect(change_on(topics[i], f"s{i}"))
        data = got["payload"]["data"]
        assert data["type"] == "INSERT" and data["errors"] is None
        assert data["record"] == {"team": i, "slot": f"s{i}", "owner": u, "body": "mine"}
    # service_role bypasses RLS: every row.  anon has its own policy: team 0 only.
    for slot in [f"s{i}" for i in owners] + ["nobody"]:
        await socks[0].expect(change_on(service_topic, slot))
    await socks[1].expect(change_on(anon_topic, "s0"))
    for s in socks:
        await s.nothing(lambda m: m["event"] == "postgres_changes")

    # A policy change takes effect at the next batch, for every identity.
    await rt.sql(
        'alter policy "own rows" on public.board'
        " using (body = 'public' or owner = (select auth.uid()))"
    )
    await rt.sql(f"insert into board values (7, 'news', '{uuid.uuid4()}', 'public')")
    for i in range(USERS):
        await socks[i % 2].expect(change_on(topics[i], "news"))
    await socks[0].expect(change_on(service_topic, "news"))
    for s in socks:
        await s.nothing(lambda m: m["event"] == "postgres_changes")


async def test_updates_and_deletes_in_one_batch(sockets: Any, rt: RT) -> None:
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    sock = await sockets()
    a_topic, b_topic = await join(sock, rt.token(alice)), await join(sock, rt.token(bob))
    await rt.sql(
        "begin;"
        f"insert into board values (50, 'x', '{alice}', 'v1'), (50, 'y', '{alice}', 'gone');"
        f"update board set body = 'v2' where team = 50 and slot = 'x';"
        "delete from board where team = 50 and slot = 'y';"
        "commit;"
    )
    # Each change is checked against the row as it is when delivered: the insert of a row
    # deleted since is not sent; the delete cannot be checked (the row is gone), so it goes to
    # every subscriber, with only the key.
    got = [(await sock.expect(change_on(a_topic)))["payload"]["data"] for _ in range(3)]
    assert [(d["type"], d.get("record")) for d in got] == [
        ("INSERT", {"team": 50, "slot": "x", "owner": alice, "body": "v1"}),
        ("UPDATE", {"team": 50, "slot": "x", "owner": alice, "body": "v2"}),
        ("DELETE", None),
    ]
    d = (await sock.expect(change_on(b_topic)))["payload"]["data"]
    assert d["type"] == "DELETE" and d["old_record"] == {"team": 50, "slot": "y"}
    await sock.nothing(lambda m: m["event"] == "postgres_changes")
