"""Postgres changes: capture, RLS per subscriber, column privileges, filters, order, size."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.realtime.conftest import ALICE, BOB, RT, unique

SCHEMA = """
create table public.notes (
  id bigserial primary key, owner uuid not null, body text, secret text, n int,
  doc jsonb, tags text[]
);
alter table public.notes enable row level security;
create policy "own notes" on public.notes for select to authenticated using (owner = auth.uid());
-- authenticated may read every column but `secret`.
revoke select on public.notes from authenticated;
grant select (id, owner, body, n, doc, tags) on public.notes to authenticated;

create table public.items (id int primary key, n int, cat text, big text);
create table public.full_items (id int primary key, n int, big text);
alter table public.full_items replica identity full;
create table public.quiet (id int primary key);
alter publication supabase_realtime add table public.notes, public.items, public.full_items;
"""


@pytest.fixture(scope="module", autouse=True)
async def schema(rt: RT) -> None:
    await rt.sql(SCHEMA)


def change(pred: Any = None) -> Any:
    return lambda m: m["event"] == "postgres_changes" and (pred is None or pred(m["payload"]))


def of_type(kind: str, table: str) -> Any:
    return change(lambda p: p["data"]["type"] == kind and p["data"]["table"] == table)


async def subscribe(
    sock: Any, rt: RT, subs: list[dict[str, Any]], token: str | None = None
) -> list[int]:
    name = unique("db")
    _, reply = await sock.join(name, {"postgres_changes": subs}, token=token)
    assert reply["status"] == "ok", reply
    got = reply["response"]["postgres_changes"]
    # The reply echoes each subscription as sent, plus the id changes will carry.
    assert [{k: v for k, v in g.items() if k != "id"} for g in got] == subs
    system = await sock.event(f"realtime:{name}", "system")
    assert system["payload"] == {
        "extension": "postgres_changes",
        "status": "ok",
        "message": "Subscribed to PostgreSQL",
        "channel": name,
    }
    return [g["id"] for g in got]


async def test_rls_per_subscriber_and_column_privileges(sockets: Any, rt: RT) -> None:
    alice, bob, service = await sockets(), await sockets("2.0.0"), await sockets()
    sub = [{"event": "*", "schema": "public", "table": "notes"}]
    (a_id,) = await subscribe(alice, rt, sub, rt.token(ALICE))
    await subscribe(bob, rt, sub, rt.token(BOB))
    await subscribe(service, rt, sub, rt.token(role="service_role"))
    await rt.sql(
        f"insert into notes (owner, body, secret, n, doc, tags) values"
        f" ('{ALICE}', 'for alice', 's3cret', 1, '{{\"a\": [1]}}', '{{x,y}}')"
    )
    got = await alice.expect(of_type("INSERT", "notes"))
    p = got["payload"]
    assert p["ids"] == [a_id]
    data = p["data"]
    assert data["record"] == {
        "id": data["record"]["id"],
        "owner": ALICE,
        "body": "for alice",
        "n": 1,
        "doc": {"a": [1]},
        "tags": ["x", "y"],
    }
    assert "secret" not in {c["name"] for c in data["columns"]}
    assert {"name": "n", "type": "int4"} in data["columns"]
    assert {"name": "tags", "type": "_text"} in data["columns"]
    assert data["errors"] is None and data["schema"] == "public"
    assert data["commit_timestamp"].endswith("Z") and "T" in data["commit_timestamp"]
    # service_role bypasses RLS and may read every column.
    s = (await service.expect(of_type("INSERT", "notes")))["payload"]["data"]
    assert s["record"]["secret"] == "s3cret"
    await bob.nothing(of_type("INSERT", "notes"))

    await rt.sql(f"insert into notes (owner, body) values ('{BOB}', 'for bob')")
    assert (await bob.expect(of_type("INSERT", "notes")))["payload"]["data"]["record"][
        "body"
    ] == "for bob"
    await alice.nothing(of_type("INSERT", "notes"))

    # A policy change takes effect for the next change.
    await rt.sql('create policy "everyone" on notes for select to authenticated using (true)')
    await rt.sql(f"insert into notes (owner, body) values ('{ALICE}', 'shared')")
    assert (await bob.expect(of_type("INSERT", "notes")))["payload"]["data"]["record"][
        "body"
    ] == "shared"
    await rt.sql('drop policy "everyone" on notes')

    # DELETE under RLS: the row is gone, so only its key travels (to whoever may select).
    await rt.sql("delete from notes where body = 'for alice'")
    d = (await alice.expect(of_type("DELETE", "notes")))["payload"]["data"]
    assert d["old_record"] == {"id": data["record"]["id"]} and "record" not in d


async def test_anon_without_select_gets_an_error_payload(sockets: Any, rt: RT) -> None:
    await rt.sql(
        "create table public.locked (id int primary key, v text);"
        "revoke all on public.locked from anon;"
        "alter publication supabase_realtime add table public.locked"
    )
    s = await sockets()
    await subscribe(s, rt, [{"event": "INSERT", "schema": "public", "table": "locked"}])
    await rt.sql("insert into locked values (1, 'hidden')")
    d = (await s.expect(of_type("INSERT", "locked")))["payload"]["data"]
    assert d["errors"] == ["Error 401: Unauthorized"] and d["record"] == {}


async def test_filters_and_events(sockets: Any, rt: RT) -> None:
    s = await sockets()
    subs = [
        {"event": "INSERT", "schema": "public", "table": "items", "filter": f"n={op}"}
        for op in ("eq.3", "neq.3", "lt.3", "lte.3", "gt.3", "gte.3", "in.(1,5)")
    ] + [{"event": "UPDATE", "schema": "public", "table": "items", "filter": "cat=eq.b c"}]
    ids = await subscribe(s, rt, subs)
    expected = {  # n → the filters it passes, in `subs` order
        1: [1, 2, 3, 6],
        2: [1, 2, 3],
        3: [0, 3, 5],
        4: [1, 4, 5],
        5: [1, 4, 5, 6],
    }
    await rt.sql("insert into items (id, n, cat) select n, n, 'a' from generate_series(1, 5) n")
    for n in range(1, 6):
        got = (await s.expect(of_type("INSERT", "items")))["payload"]
        assert got["data"]["record"]["n"] == n  # in order
        assert sorted(got["ids"]) == sorted(ids[i] for i in expected[n]), n
    await rt.sql(
        "update items set cat = 'b c' where id = 2; update items set cat = 'z' where id = 3"
    )
    got = (await s.expect(of_type("UPDATE", "items")))["payload"]
    assert got["ids"] == [ids[7]] and got["data"]["record"]["id"] == 2
    assert got["data"]["old_record"] == {"id": 2}  # the key: no REPLICA IDENTITY FULL
    await s.nothing(of_type("UPDATE", "items"))
    await rt.sql("delete from items")
    await s.nothing(of_type("DELETE", "items"))


async def test_transaction_order_and_commit_order(sockets: Any, rt: RT) -> None:
    s = await sockets("2.0.0")
    await subscribe(s, rt, [{"event": "INSERT", "schema": "public", "table": "items"}])
    await rt.sql("insert into items (id, n) select i, i from generate_series(100, 149) i")
    seen = [
        (await s.expect(of_type("INSERT", "items")))["payload"]["data"]["record"]["id"]
        for _ in range(50)
    ]
    assert seen == list(range(100, 150))
    # Two transactions: the one that commits first is delivered first.
    import asyncpg

    first = await asyncpg.connect(rt.db_url)
    second = await asyncpg.connect(rt.db_url)
    try:
        await first.execute("begin; insert into items (id, n) values (200, 0)")
        await second.execute("begin; insert into items (id, n) values (201, 0); commit")
        await first.execute("commit")
    finally:
        await first.close()
        await second.close()
    order = [
        (await s.expect(of_type("INSERT", "items")))["payload"]["data"]["record"]["id"]
        for _ in range(2)
    ]
    assert order == [201, 200]
    await s.nothing(of_type("INSERT", "items"), wait=0.5)  # and nothing twice


async def test_large_rows_and_replica_identity_full(sockets: Any, rt: RT) -> None:
    s = await sockets()
    await subscribe(s, rt, [{"event": "*", "schema": "public", "table": "full_items"}])
    big = "".join(chr(0x41 + i % 26) for i in range(200_000))  # far over NOTIFY's 8 kB
    await rt.sql(f"insert into full_items values (1, 1, '{big}')")
    d = (await s.expect(of_type("INSERT", "full_items")))["payload"]["data"]
    assert d["record"] == {"id": 1, "n": 1, "big": big}
    await rt.sql("update full_items set n = 2")
    d = (await s.expect(of_type("UPDATE", "full_items")))["payload"]["data"]
    # REPLICA IDENTITY FULL: the whole old row, and the unchanged TOASTed value is filled in.
    assert d["old_record"] == {"id": 1, "n": 1, "big": big}
    assert d["record"] == {"id": 1, "n": 2, "big": big}
    await rt.sql("delete from full_items")
    d = (await s.expect(of_type("DELETE", "full_items")))["payload"]["data"]
    assert d["old_record"] == {"id": 1, "n": 2, "big": big}


async def test_publication_membership(sockets: Any, rt: RT) -> None:
    s = await sockets()
    await subscribe(s, rt, [{"event": "INSERT", "schema": "public", "table": "quiet"}])
    await rt.sql("insert into quiet values (1)")
    await s.nothing(of_type("INSERT", "quiet"))  # not in the publication
    await rt.sql(
        "alter publication supabase_realtime add table quiet; insert into quiet values (2)"
    )
    got = await s.expect(of_type("INSERT", "quiet"))
    assert got["payload"]["data"]["record"] == {"id": 2}
    await rt.sql(
        "alter publication supabase_realtime drop table quiet; insert into quiet values (3)"
    )
    await s.nothing(of_type("INSERT", "quiet"))


async def test_slot_moves_past_writes_to_unpublished_tables(rt: RT) -> None:
    """Writes that publish nothing must not pin the slot: it would keep their WAL on disk for
    ever, and every read of the slot would decode all of it again."""
    await rt.sql("insert into quiet select g from generate_series(1000, 1999) g")
    written = (await rt.fetch("select pg_current_wal_flush_lsn()::text as lsn"))[0]["lsn"]
    moved = (
        "select confirmed_flush_lsn >= $1::text::pg_lsn as moved from pg_replication_slots"
        " where slot_name = 'supalite_realtime'"
    )
    for _ in range(100):
        if (await rt.fetch(moved, written))[0]["moved"]:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the slot stayed behind writes that publish nothing")
    await rt.sql("delete from quiet where id >= 1000")


async def test_schema_wide_subscription(sockets: Any, rt: RT) -> None:
    s = await sockets()
    await subscribe(s, rt, [{"event": "*", "schema": "public"}])
    await rt.sql("insert into items (id, n) values (900, 9)")
    got = await s.expect(of_type("INSERT", "items"))
    assert got["payload"]["data"]["record"]["id"] == 900


async def test_bad_subscriptions_get_a_system_error(sockets: Any, rt: RT) -> None:
    s = await sockets()
    for subs, message in [
        ([{"event": "*", "schema": "public", "table": "no_such_table"}], "Unable to subscribe"),
        (
            [{"event": "*", "schema": "public", "table": "items", "filter": "nope=eq.1"}],
            "invalid column for filter nope",
        ),
        (
            [{"event": "*", "schema": "public", "table": "items", "filter": "n=like.1"}],
            "invalid filter operator",
        ),
    ]:
        name = unique()
        _, reply = await s.join(name, {"postgres_changes": subs})
        assert reply["status"] == "ok"  # the join stands; the subscription reports its error
        system = await s.event(f"realtime:{name}", "system")
        assert system["payload"]["status"] == "error"
        assert system["payload"]["extension"] == "postgres_changes"
        assert message in system["payload"]["message"]


async def test_a_policy_that_raises_hides_the_row_only_from_that_caller(
    sockets: Any, rt: RT
) -> None:
    await rt.sql(
        "create table public.touchy (id int primary key);"
        "alter table public.touchy enable row level security;"
        "create policy boom on public.touchy for select to authenticated"
        # Raises at run time, for bob only (a constant 1/0 would fail while planning).
        f" using ((case when auth.uid() = '{BOB}'::uuid"
        " then 1 / (0 * length(auth.uid()::text)) else 1 end) = 1);"
        "alter publication supabase_realtime add table public.touchy"
    )
    alice, bob = await sockets(), await sockets()
    sub = [{"event": "INSERT", "schema": "public", "table": "touchy"}]
    await subscribe(alice, rt, sub, rt.token(ALICE))
    await subscribe(bob, rt, sub, rt.token(BOB))
    await rt.sql("insert into touchy values (1)")
    got = await alice.expect(of_type("INSERT", "touchy"))
    assert got["payload"]["data"]["record"] == {"id": 1}
    await bob.nothing(of_type("INSERT", "touchy"))


async def test_a_token_with_an_unknown_role_does_not_block_others(sockets: Any, rt: RT) -> None:
    odd, good = await sockets(), await sockets()
    sub = [{"event": "INSERT", "schema": "public", "table": "items"}]
    await subscribe(odd, rt, sub, rt.token(ALICE, role="no_such_role"))
    await subscribe(good, rt, sub, rt.token(ALICE))
    await rt.sql("insert into items (id, n) values (5000, 1)")
    assert (await good.expect(of_type("INSERT", "items")))["payload"]["data"]["record"][
        "id"
    ] == 5000
    d = (await odd.expect(of_type("INSERT", "items")))["payload"]["data"]
    assert d["errors"] == ["Error 401: Unauthorized"] and d["record"] == {}
