"""The database contract: roles, schemas, grants, auth.* helpers, per-request transactions."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import asyncpg
import pytest

from supalite.db.api_pool import ApiConnection, ApiPool
from supalite.db.bootstrap import authenticator_password, bootstrap, steps
from supalite.db.embedded import EmbeddedPostgres
from supalite.db.request import (
    SESSION_DIGEST,
    RequestContext,
    request_statement,
    request_transaction,
)
from tests.conftest import TEST_SECRET


async def _api_pool(embedded_pg: EmbeddedPostgres, size: int) -> ApiPool:
    url = embedded_pg.local_url("authenticator", authenticator_password(TEST_SECRET))
    return await ApiPool.open(
        lambda: asyncpg.connect(url, connection_class=ApiConnection),
        max_size=size,
        idle_timeout=60,
    )


@pytest.fixture
async def api_pool(embedded_pg: EmbeddedPostgres) -> AsyncIterator[ApiPool]:
    pool = await _api_pool(embedded_pg, 4)
    yield pool
    await pool.close()


def ctx(
    role: str, sub: str | None = None, *, read_only: bool = False, **claims: object
) -> RequestContext:
    c: dict[str, object] = {"role": role, **claims}
    if sub:
        c["sub"] = sub
    return RequestContext(
        role=role,
        claims_json=json.dumps(c),
        method="GET",
        path="/rest/v1/t",
        headers_json='{"x-test":"1"}',
        read_only=read_only,
    )


async def test_roles_as_supabase_has_them(admin_conn: asyncpg.Connection) -> None:
    rows = await admin_conn.fetch(
        "select rolname, rolcanlogin, rolbypassrls, rolinherit from pg_roles"
        " where rolname in ('anon','authenticated','service_role','authenticator','supabase_admin')"
    )
    roles = {r["rolname"]: r for r in rows}
    assert set(roles) == {
        "anon",
        "authenticated",
        "service_role",
        "authenticator",
        "supabase_admin",
    }
    assert roles["service_role"]["rolbypassrls"] is True
    assert roles["anon"]["rolbypassrls"] is False
    assert roles["authenticator"]["rolcanlogin"] is True
    assert roles["authenticator"]["rolinherit"] is False  # only ever acts through SET ROLE
    assert not roles["anon"]["rolcanlogin"]
    members = await admin_conn.fetch(
        "select r.rolname from pg_auth_members m join pg_roles r on r.oid = m.roleid"
        " join pg_roles u on u.oid = m.member where u.rolname = 'authenticator'"
    )
    assert {r["rolname"] for r in members} == {"anon", "authenticated", "service_role"}


async def test_schemas_exist(admin_conn: asyncpg.Connection) -> None:
    names = {r["nspname"] for r in await admin_conn.fetch("select nspname from pg_namespace")}
    assert {"auth", "storage", "realtime", "extensions", "supabase_migrations", "public"} <= names
    cols = await admin_conn.fetch(
        "select column_name from information_schema.columns"
        " where table_schema = 'supabase_migrations' and table_name = 'schema_migrations'"
    )
    assert {c["column_name"] for c in cols} >= {"version", "statements", "name"}


async def test_bootstrap_is_idempotent(
    embedded_pg: EmbeddedPostgres, admin_conn: asyncpg.Connection
) -> None:
    assert await bootstrap(embedded_pg.local_url(), TEST_SECRET) == []
    # Each step also runs cleanly on a database that already has everything (e.g. Supabase's).
    for _, _, sql in steps():
        await admin_conn.execute(sql)
    versions = [
        r["version"] for r in await admin_conn.fetch("select version from _supalite.bootstrap")
    ]
    assert versions == [v for v, _, _ in steps()]


async def test_concurrent_bootstrap_applies_each_step_once(
    embedded_pg: EmbeddedPostgres, admin_conn: asyncpg.Connection
) -> None:
    name = f"boot_{uuid.uuid4().hex[:8]}"
    await admin_conn.execute(f'create database "{name}"')
    url = embedded_pg.local_url().replace("/postgres?", f"/{name}?")
    try:
        results = await asyncio.gather(*(bootstrap(url, TEST_SECRET) for _ in range(3)))
        applied = sorted(v for r in results for v in r)
        assert applied == [v for v, _, _ in steps()]
    finally:
        await admin_conn.execute(f'drop database "{name}" with (force)')


async def test_auth_helpers_read_request_claims(api_pool: ApiPool) -> None:
    sub = str(uuid.uuid4())
    async with request_transaction(
        api_pool, ctx("authenticated", sub, email="u@x.io", aal="aal2")
    ) as c:
        row = await c.fetchrow(
            "select auth.uid() as uid, auth.role() as role, auth.email() as email,"
            " auth.jwt() ->> 'aal' as aal, current_user as cu,"
            " current_setting('request.method') as m, current_setting('request.path') as p,"
            " current_setting('request.headers')::json ->> 'x-test' as h"
        )
    assert str(row["uid"]) == sub
    assert (row["role"], row["email"], row["aal"], row["cu"]) == (
        "authenticated",
        "u@x.io",
        "aal2",
        "authenticated",
    )
    assert (row["m"], row["p"], row["h"]) == ("GET", "/rest/v1/t", "1")
    # Settings are transaction-local: the pooled connection keeps nothing.
    async with api_pool._acquire() as c:
        assert await c.fetchval("select current_user") == "authenticator"
        assert await c.fetchval("select current_setting('request.jwt.claims', true)") in (None, "")


async def test_public_tables_reachable_and_rls_decides(
    admin_conn: asyncpg.Connection, api_pool: ApiPool
) -> None:
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    await admin_conn.execute("drop table if exists public.notes")
    await admin_conn.execute(
        "create table public.notes (id serial primary key, owner uuid not null, body text)"
    )
    await admin_conn.execute(
        "insert into public.notes (owner, body) values ($1, 'a1'), ($1, 'a2'), ($2, 'b1')",
        uuid.UUID(alice),
        uuid.UUID(bob),
    )
    # RLS off: the default grants make the table reachable by the API roles, as on Supabase.
    async with request_transaction(api_pool, ctx("anon")) as c:
        assert await c.fetchval("select count(*) from notes") == 3
    await admin_conn.execute("alter table public.notes enable row level security")
    await admin_conn.execute(
        "create policy own on public.notes for all to authenticated"
        " using (owner = auth.uid()) with check (owner = auth.uid())"
    )
    async with request_transaction(api_pool, ctx("anon")) as c:
        assert await c.fetchval("select count(*) from notes") == 0
    async with request_transaction(api_pool, ctx("authenticated", alice)) as c:
        assert sorted(await c.fetchval("select array_agg(body) from notes")) == ["a1", "a2"]
    async with request_transaction(api_pool, ctx("authenticated", bob)) as c:
        assert await c.fetchval("select array_agg(body) from notes") == ["b1"]
        with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
            await c.execute(
                "insert into notes (owner, body) values ($1, 'forged')", uuid.UUID(alice)
            )
    async with request_transaction(api_pool, ctx("service_role")) as c:
        assert await c.fetchval("select count(*) from notes") == 3  # BYPASSRLS
    await admin_conn.execute("drop table public.notes")


async def test_authenticator_cannot_become_anyone_else(api_pool: ApiPool) -> None:
    with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
        async with request_transaction(api_pool, ctx("postgres")) as c:
            await c.fetchval("select 1")
    with pytest.raises(asyncpg.exceptions.InvalidParameterValueError):
        async with request_transaction(api_pool, ctx("no_such_role")) as c:
            await c.fetchval("select 1")


async def test_read_only_transactions_refuse_writes(
    admin_conn: asyncpg.Connection, api_pool: ApiPool
) -> None:
    await admin_conn.execute("create table if not exists public.ro_probe (x int)")
    with pytest.raises(asyncpg.exceptions.ReadOnlySQLTransactionError):
        async with request_transaction(api_pool, ctx("service_role", read_only=True)) as c:
            await c.execute("insert into ro_probe values (1)")
    assert await admin_conn.fetchval("select count(*) from public.ro_probe") == 0


async def test_failed_request_rolls_back_everything(
    admin_conn: asyncpg.Connection, api_pool: ApiPool
) -> None:
    await admin_conn.execute("create table if not exists public.tx_probe (x int unique)")
    with pytest.raises(asyncpg.exceptions.UniqueViolationError):
        async with request_transaction(api_pool, ctx("service_role")) as c:
            await c.execute("insert into tx_probe values (1)")
            await c.execute("insert into tx_probe values (1)")
    assert await admin_conn.fetchval("select count(*) from public.tx_probe") == 0


async def test_ddl_notifies_schema_reload(
    embedded_pg: EmbeddedPostgres, admin_conn: asyncpg.Connection
) -> None:
    listener = await asyncpg.connect(embedded_pg.local_url())
    got: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener("pgrst", lambda *a: got.put_nowait(a[3]))
    try:
        await admin_conn.execute(
            "create table public.ddl_probe (x int); drop table public.ddl_probe"
        )
        assert await asyncio.wait_for(got.get(), 5) == "reload schema"
    finally:
        await listener.close()


@pytest.fixture
async def one_connection(embedded_pg: EmbeddedPostgres) -> AsyncIterator[ApiPool]:
    """An API pool of one connection: every request reuses what the previous one left."""
    pool = await _api_pool(embedded_pg, 1)
    yield pool
    await pool.close()


async def _read(pool: ApiPool, c: RequestContext, select: str) -> asyncpg.Record:
    statement = f"select {select}, {SESSION_DIGEST}"
    async with request_statement(pool, c, statement, [], atomic=False) as (_, row):
        assert row is not None
        return row


async def test_a_read_repeating_the_last_settings_skips_setting_them(
    one_connection: ApiPool,
) -> None:
    anon = ctx("anon", read_only=True)
    await _read(one_connection, anon, "set_config('probe.left', 'by the first read', false)")
    # Not reset in between: the settings were not applied again (a custom setting a function
    # leaves on the session outlives the request, as on PostgREST).
    row = await _read(one_connection, anon, "current_setting('probe.left', true) AS left_")
    assert row["left_"] == "by the first read"
    # Other settings: applied, which resets the session first.
    other = ctx("authenticated", "00000000-0000-0000-0000-00000000000a", read_only=True)
    row = await _read(one_connection, other, "current_setting('probe.left', true) AS left_")
    assert row["left_"] in (None, "")


async def test_a_read_never_runs_under_settings_changed_since_they_were_set(
    one_connection: ApiPool,
) -> None:
    alice = ctx("authenticated", "00000000-0000-0000-0000-0000000000a1", read_only=True)
    # Something the first read ran (a function, say) changes the caller for the session.
    forged = json.dumps({"role": "authenticated", "sub": "00000000-0000-0000-0000-0000000000b2"})
    await _read(one_connection, alice, f"set_config('request.jwt.claims', '{forged}', false)")
    row = await _read(one_connection, alice, "auth.uid()::text AS uid, current_user AS who")
    assert row["uid"] == "00000000-0000-0000-0000-0000000000a1"
    assert row["who"] == "authenticated"
    # And after a request that is not a one-statement read (its settings are its own).
    async with request_transaction(one_connection, ctx("service_role")) as c:
        assert await c.fetchval("select current_user") == "service_role"
    row = await _read(one_connection, alice, "auth.uid()::text AS uid, current_user AS who")
    assert (row["uid"], row["who"]) == ("00000000-0000-0000-0000-0000000000a1", "authenticated")


@pytest.fixture
async def insert_probe(admin_conn: asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:
    """A table whose defaults record what an insert ran under."""
    await admin_conn.execute(
        "drop table if exists public.insert_probe;"
        "create table public.insert_probe (n int, who text default current_user,"
        " uid text default auth.uid(), path text default current_setting('request.path'),"
        " hdr text default current_setting('request.headers')::json ->> 'x-test',"
        " left_ text default current_setting('probe.left', true),"
        " sp text default current_setting('search_path'))"
    )
    yield admin_conn
    await admin_conn.execute("drop table public.insert_probe")


async def _insert(pool: ApiPool, c: RequestContext, n: int) -> None:
    """A one-statement insert whose body is checked (as the Data API's are)."""
    values: list[object] = []

    def param(v: object) -> str:
        values.append(v)
        return f"${len(values)}::text"

    body = c.checked_body(param, f"{param(json.dumps([{'n': n}]))}::json")
    sql = f"insert into public.insert_probe (n) select n from json_to_recordset({body}) as r(n int)"
    async with request_statement(pool, c, sql, values, atomic=False, checked=True) as (_, row):
        assert row is None  # no RETURNING


def _as(c: RequestContext, path: str, header: str) -> RequestContext:
    return replace(c, method="POST", path=path, headers_json=json.dumps({"x-test": header}))


async def test_an_insert_by_the_last_caller_skips_setting_the_settings(
    one_connection: ApiPool, insert_probe: asyncpg.Connection
) -> None:
    alice = ctx("authenticated", "00000000-0000-0000-0000-0000000000a1")
    await _insert(one_connection, _as(alice, "/rest/v1/a", "1"), 1)
    # Left on the session by something other than a request's settings.
    async with one_connection._acquire() as conn:
        await conn.execute("select set_config('probe.left', 'still here', false)")
    await _insert(one_connection, _as(alice, "/rest/v1/b", "2"), 2)
    # Another caller: the session is reset and set for them.
    bob = ctx("authenticated", "00000000-0000-0000-0000-0000000000b2")
    await _insert(one_connection, _as(bob, "/rest/v1/c", "3"), 3)
    rows = await insert_probe.fetch("select * from public.insert_probe order by n")
    assert [(r["who"], r["uid"], r["path"], r["hdr"]) for r in rows] == [
        ("authenticated", "00000000-0000-0000-0000-0000000000a1", "/rest/v1/a", "1"),
        # The second insert's own path and headers, under the same caller, no reset between.
        ("authenticated", "00000000-0000-0000-0000-0000000000a1", "/rest/v1/b", "2"),
        ("authenticated", "00000000-0000-0000-0000-0000000000b2", "/rest/v1/c", "3"),
    ]
    assert [r["left_"] or None for r in rows] == [None, "still here", None]  # RESET ALL: ''


@pytest.mark.parametrize(
    "change",
    [
        'set_config(\'request.jwt.claims\', \'{"role": "authenticated", "sub": "x"}\', false)',
        "set_config('role', 'anon', false)",
        "set_config('search_path', 'auth', false)",
        "set_config('default_transaction_read_only', 'on', false)",
    ],
)
async def test_an_insert_never_runs_under_a_caller_changed_since_it_was_set(
    one_connection: ApiPool, insert_probe: asyncpg.Connection, change: str
) -> None:
    alice = ctx("authenticated", "00000000-0000-0000-0000-0000000000a1")
    await _insert(one_connection, _as(alice, "/rest/v1/a", "1"), 1)
    # Something a request ran (a function, say) changes the session for the requests after it.
    async with one_connection._acquire() as conn:
        await conn.execute(f"select {change}")
    await _insert(one_connection, _as(alice, "/rest/v1/b", "2"), 2)
    rows = await insert_probe.fetch("select n, who, uid, sp from public.insert_probe order by n")
    alice_row = ("authenticated", "00000000-0000-0000-0000-0000000000a1", alice.search_path)
    assert [tuple(r) for r in rows] == [(1, *alice_row), (2, *alice_row)]  # each once, as alice
