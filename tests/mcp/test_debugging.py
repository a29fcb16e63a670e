"""The debugging tools: get_logs (supalite's request log through GET /pg/logs) and
get_advisors (catalog lints with the SQL that fixes each finding), over stdio, over HTTP and
over a direct DATABASE_URL."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from pathlib import Path
from typing import Any

import httpx

from supalite.config import load_settings
from supalite.logs import log_path
from tests.mcp.conftest import INJECTION, Project, call, fail, http_session, stdio_session, text_of

# One instance of every problem the advisors know, in a schema of its own, exposed to the API
# roles the way Supabase's default privileges expose `public`.
PROBLEMS = """
create schema {s};
grant usage on schema {s} to anon, authenticated, service_role;
alter default privileges in schema {s} grant all on tables to anon, authenticated, service_role;
alter default privileges in schema {s} grant all on functions to anon, authenticated,
  service_role;

-- security
create table {s}.open_table (id int primary key, v text);
create table {s}.owned (id int primary key, owner uuid, v text);
alter table {s}.owned enable row level security;
create policy meta_admin on {s}.owned for all to authenticated
  using ((auth.jwt() -> 'user_metadata' ->> 'role') = 'admin');
create view {s}.owned_view as select id, v from {s}.owned;
create materialized view {s}.user_emails as select id, email from auth.users;
create function {s}.bump(n int) returns int language sql security definer
  as $$ select n + 1 $$;

-- performance
create table {s}.parent (id int primary key);
alter table {s}.parent enable row level security;
create table {s}.child (id int primary key, parent_id int references {s}.parent (id));
alter table {s}.child enable row level security;
create table {s}.mine (id int primary key, owner uuid);
alter table {s}.mine enable row level security;
create policy own on {s}.mine for all to authenticated
  using (owner = auth.uid()) with check (owner = auth.uid());
create table {s}.dup (id int primary key, email text);
alter table {s}.dup enable row level security;
create index dup_email_a on {s}.dup (email);
create index dup_email_b on {s}.dup (email);
create table {s}.nopk (v text);
alter table {s}.nopk enable row level security;
insert into {s}.nopk values ('a'), ('b');
create table {s}."No PK, unique" (id text, code text not null, v text);
alter table {s}."No PK, unique" enable row level security;
create unique index "code idx" on {s}."No PK, unique" (code);

-- clean: the same shapes done right
create table {s}.clean (id bigint generated always as identity primary key, owner uuid,
  parent_id int references {s}.parent (id), v text);
create index on {s}.clean (parent_id);
alter table {s}.clean enable row level security;
create policy clean_own on {s}.clean for all to authenticated
  using (owner = (select auth.uid())) with check (owner = (select auth.uid()));
create policy clean_admin on {s}.clean for select to authenticated
  using (((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin');
create view {s}.clean_view with (security_invoker = on) as select id, v from {s}.clean;
create function {s}.clean_definer() returns int language sql security definer as $$ select 1 $$;
revoke execute on function {s}.clean_definer() from public, anon;
create function {s}.clean_invoker() returns int language sql as $$ select 1 $$;
"""

# (lint, object) for every problem above; objects are metadata.name.
EXPECTED = {
    "security": {
        ("rls_disabled_in_public", "open_table"),
        ("rls_references_user_metadata", "owned"),
        ("security_definer_view", "owned_view"),
        ("auth_users_exposed", "user_emails"),
        ("anon_security_definer_function_executable", "bump"),
    },
    "performance": {
        ("unindexed_foreign_keys", "child"),
        ("auth_rls_initplan", "mine"),
        ("duplicate_index", "dup"),
        ("no_primary_key", "nopk"),
        ("no_primary_key", "No PK, unique"),
    },
}
CLEAN = {"clean", "clean_view", "clean_definer", "clean_invoker", "parent"}
LEVELS = {  # as Supabase's advisors rate them
    "rls_disabled_in_public": "ERROR", "rls_references_user_metadata": "ERROR",
    "security_definer_view": "ERROR", "auth_users_exposed": "ERROR",
    "anon_security_definer_function_executable": "WARN", "unindexed_foreign_keys": "INFO",
    "auth_rls_initplan": "WARN", "duplicate_index": "WARN", "no_primary_key": "INFO",
}  # fmt: skip


def _findings(got: dict[str, Any], schema: str) -> list[dict[str, Any]]:
    return [f for f in got["rows"] if f["metadata"]["schema"] == schema]


def _keys(findings: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(f["name"], f["metadata"]["name"]) for f in findings}


def _check_shape(got: dict[str, Any], kind: str) -> None:
    assert got["type"] == kind and got["truncated"] is False
    assert got["boundary"] and "untrusted" in got["warning"]
    for f in got["rows"]:
        assert f["level"] == LEVELS[f["name"]] and f["title"]
        assert f["fix_sql"].strip().endswith(";")
        assert f["categories"] == [kind.upper()]
        assert f["remediation"].endswith("lint=" + f["name"])
        assert f["metadata"]["name"] in f["detail"], f


async def test_advisors_find_every_problem_and_their_fixes_remove_it(live: Project) -> None:
    s = "adv_stdio"
    live.script(PROBLEMS.format(s=s))
    # All schemas (the default), with room for what the other tests' schemas hold.
    big = ("--max-rows", "10000", "--max-bytes", str(10**8))
    async with stdio_session(live.root, *big) as session:
        for kind in ("security", "performance"):
            got = await call(session, "get_advisors", {"type": kind})
            _check_shape(got, kind)
            found = _findings(got, s)
            keys = _keys(found)
            assert EXPECTED[kind] <= keys, EXPECTED[kind] - keys
            # The clean objects yield nothing; only the problems above (and the other lints
            # those same objects trip, e.g. RLS off on a table that has no primary key) do.
            assert not {name for _, name in keys} & CLEAN, keys
            for f in found:
                live.script(f["fix_sql"])
            again = await call(session, "get_advisors", {"type": kind, "schemas": [s]})
            assert again["rows"] == [], again["rows"]

    # The fixes did what they say, not just silence the lint.
    assert live.sql(
        "select has_function_privilege('anon', $1::regprocedure, 'EXECUTE'), "
        "has_function_privilege('authenticated', $1::regprocedure, 'EXECUTE')",
        f"{s}.bump(int)",
    ) == [(False, True)]
    quals = dict(live.sql("select policyname, qual from pg_policies where schemaname = $1", s))
    assert "app_metadata" in quals["meta_admin"] and "user_metadata" not in quals["meta_admin"]
    assert "SELECT auth.jwt()" in quals["meta_admin"]  # the security fix wraps the call too
    assert "SELECT auth.uid()" in quals["own"]
    assert live.sql(
        "select count(*)::int from pg_indexes where schemaname = $1 and tablename = 'dup'", s
    ) == [(2,)]  # the primary key and one of the two email indexes
    pks = live.sql(
        "select c.relname, array(select a.attname::text from pg_attribute a where a.attrelid = "
        "c.oid and a.attnum = any(i.indkey)) from pg_index i join pg_class c on c.oid = "
        "i.indrelid where i.indisprimary and c.relnamespace = $1::regnamespace order by 1",
        s,
    )
    assert ("No PK, unique", ["code"]) in pks and ("nopk", ["id"]) in pks
    assert live.sql(f"select count(distinct id)::int from {s}.nopk") == [(2,)]
    assert live.sql(
        "select has_table_privilege('anon', $1::regclass, 'SELECT')", f"{s}.user_emails"
    ) == [(False,)]


async def test_advisors_bad_type_and_read_only(live: Project) -> None:
    async with stdio_session(live.root) as session:
        text = await fail(session, "get_advisors", {"type": "style"})
        assert "type" in text
        await fail(session, "get_advisors", {})
    # Both tools only read: listed in read-only mode, where SQL runs as the read-only login.
    s = "adv_ro"
    live.script(PROBLEMS.format(s=s))
    async with stdio_session(live.root, "--read-only") as session:
        names = {t.name for t in (await session.list_tools()).tools}
        assert {"get_logs", "get_advisors"} <= names
        for kind in ("security", "performance"):
            got = await call(session, "get_advisors", {"type": kind, "schemas": [s]})
            assert EXPECTED[kind] <= _keys(_findings(got, s))
        assert (await call(session, "get_logs", {"limit": 1}))["row_count"] == 1


def _http_get(live: Project, path: str, key: str | None = None, **params: Any) -> httpx.Response:
    headers = {"apikey": key, "Authorization": f"Bearer {key}"} if key else {}
    return httpx.get(live.url + path, params=params, headers=headers, timeout=30)


def _traffic(live: Project) -> str:
    """A few logged requests, one with hostile text in its path; that path, as logged."""
    key = live.server.anon_key
    # The Data API reloads its schema cache a moment after the fixture's DDL.
    for _ in range(100):
        if _http_get(live, "/rest/v1/todos", key, select="id").status_code == 200:
            break
        time.sleep(0.05)
    for _ in range(3):
        assert _http_get(live, "/rest/v1/todos", key, select="id").status_code == 200
    assert _http_get(live, "/auth/v1/settings", key).status_code == 200
    hostile = "/rest/v1/" + urllib.parse.quote(INJECTION, safe="")
    assert _http_get(live, hostile, key).status_code == 404
    return urllib.parse.unquote(hostile)


def test_pg_logs_endpoint(live: Project) -> None:
    hostile = _traffic(live)
    service_key = live.server.service_key
    # service_role only
    assert _http_get(live, "/pg/logs").status_code == 401
    r = _http_get(live, "/pg/logs", live.server.anon_key)
    assert r.status_code == 403 and r.json()["code"] == "42501"

    r = _http_get(live, "/pg/logs", service_key, service="rest", limit="3")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["limit"] == 3 and len(body["entries"]) == 3 and body["more"] is True
    assert {e["service"] for e in body["entries"]} == {"rest"}
    times = [e["time"] for e in body["entries"]]
    assert times == sorted(times, reverse=True)  # newest first
    assert body["entries"][0]["path"] == hostile and body["entries"][0]["status"] == 404
    for e in body["entries"]:
        assert set(e) >= {"time", "service", "method", "path", "status", "duration_ms", "role"}

    # since is inclusive, until exclusive, offsets count, a time without one is UTC: on
    # entries a millisecond apart, written where the server logs (long ago, so they are the
    # oldest of their service for the other tests).
    stamps = ["2001-02-03T04:05:06.000Z", "2001-02-03T04:05:06.001Z", "2001-02-03T04:05:06.002Z"]
    with open(log_path(load_settings(live.root, env={}).data_dir), "a") as f:
        for t in stamps:
            entry = {"time": t, "service": "gateway", "method": "GET", "path": "/x",
                     "status": 404, "duration_ms": 0.1, "role": "anon"}  # fmt: skip
            f.write(json.dumps(entry) + "\n")
        for name in ("hello", "other"):  # a function call's entry names the function
            entry = {"time": stamps[0], "service": "functions", "method": "POST",
                     "path": f"/functions/v1/{name}", "status": 200, "duration_ms": 1.0,
                     "role": "anon", "function": name, "execution_id": "e-" + name}  # fmt: skip
            f.write(json.dumps(entry) + "\n")
    got = _http_get(live, "/pg/logs", service_key, function="hello").json()["entries"]
    assert [e["execution_id"] for e in got] == ["e-hello"]
    windows = [
        ({"since": stamps[1]}, stamps[:0:-1]),
        ({"until": stamps[1]}, stamps[:1]),
        ({"since": stamps[0], "until": stamps[2]}, stamps[1::-1]),
        ({"since": "2001-02-03T06:05:06.001+02:00", "until": "2001-02-03T04:05:06.002"},
         stamps[1:2]),
    ]  # fmt: skip
    for window, want in windows:
        got = _http_get(live, "/pg/logs", service_key, service="gateway", **window)
        entries = [e["time"] for e in got.json()["entries"] if e["time"].startswith("2001-")]
        assert entries == want, window
    future = _http_get(live, "/pg/logs", service_key, since="2999-01-01T00:00:00+02:00").json()
    assert future == {"entries": [], "limit": 100, "more": False}
    # A naive time is UTC; a date alone is midnight.
    assert _http_get(live, "/pg/logs", service_key, until="2000-01-01").json()["entries"] == []

    # capped, not refused
    assert _http_get(live, "/pg/logs", service_key, limit="99999999999999999999").json()[
        "limit"
    ] == 1000  # fmt: skip

    bad = [
        ({"service": "nope"}, "22023", "unknown service"),
        ({"since": "yesterday"}, "22007", "ISO 8601"),
        ({"until": "2026-13-01"}, "22007", "ISO 8601"),
        ({"limit": "0"}, "22023", "positive"),
        ({"limit": "-5"}, "22023", "positive"),
        ({"limit": "1e3"}, "22023", "positive"),
        ({"limit": "١٢"}, "22023", "positive"),  # non-ASCII digits
        ({"since": "2026-01-02", "until": "2026-01-01"}, "22023", "before"),
        ({"since": "0001-01-01T00:00:00+14:00"}, "22008", "out of range"),
        ({"bogus": "1"}, "22023", "unknown parameter"),
    ]
    for params, code, words in bad:
        r = _http_get(live, "/pg/logs", service_key, **params)
        assert r.status_code == 400, (params, r.text)
        assert r.json()["code"] == code and words in r.json()["message"], (params, r.text)


async def test_get_logs_over_stdio(live: Project) -> None:
    hostile = _traffic(live)
    async with stdio_session(live.root) as session:
        result = await session.call_tool("get_logs", {"service": "rest", "limit": 2})
        assert not result.is_error, text_of(result)
        got = result.structured_content
        assert got is not None
        assert got["row_count"] == 2 and got["truncated"] is True and "until=" in got["note"]
        assert got["rows"][0]["path"] == hostile
        # The hostile path is inside the untrusted-data fence, in the text too.
        text = text_of(result)
        fence = f"<untrusted-data-{got['boundary']}>"
        start, end = text.index(fence), text.index(f"</untrusted-data-{got['boundary']}>")
        assert start < text.index("IGNORE ALL PREVIOUS INSTRUCTIONS") < end

        # Paging back as the note says loses nothing: it starts at the oldest entry shown.
        until = re.search(r"until=(\S+)", got["note"])
        assert until, got["note"]
        older = await call(session, "get_logs", {"service": "rest", "until": until.group(1)})
        oldest = got["rows"][-1]
        assert older["rows"] and all(e["time"] <= oldest["time"] for e in older["rows"])
        assert oldest in older["rows"]

        # Supabase's names: "api" is every request, "edge-function" the functions log.
        everything = await call(session, "get_logs", {"service": "api", "limit": 50})
        assert {"rest", "auth"} <= {e["service"] for e in everything["rows"]}
        fns = await call(session, "get_logs", {"service": "edge-function"})
        assert {e["service"] for e in fns["rows"]} <= {"functions"}

        text = await fail(session, "get_logs", {"since": "last tuesday"})
        assert "22007" in text and "ISO 8601" in text
        await fail(session, "get_logs", {"service": "postgres"})  # not a log supalite keeps
        await fail(session, "get_logs", {"limit": 0})


async def test_debugging_tools_over_http(live: Project) -> None:
    s = "adv_http"
    live.script(PROBLEMS.format(s=s))
    async with http_session(live.url, live.server.service_key) as session:
        names = {t.name for t in (await session.list_tools()).tools}
        assert {"get_logs", "get_advisors"} <= names
        for kind in ("security", "performance"):
            got = await call(session, "get_advisors", {"type": kind, "schemas": [s]})
            _check_shape(got, kind)
            assert EXPECTED[kind] <= _keys(_findings(got, s))
        # This session's own initialize went through /mcp and is in the log.
        logs = await call(session, "get_logs", {"service": "mcp"})
        assert logs["rows"] and {e["path"] for e in logs["rows"]} == {"/mcp"}


async def test_direct_database_url(live: Project, tmp_path: Path) -> None:
    """A project reached by DATABASE_URL (a hosted Supabase project): advisors work, logs
    are refused with a clear message."""
    s = "adv_direct"
    live.script(PROBLEMS.format(s=s))
    env = {
        "SUPABASE_URL": live.url,
        "SUPABASE_ANON_KEY": live.server.anon_key,
        "SUPABASE_SERVICE_ROLE_KEY": live.server.service_key,
        "DATABASE_URL": live.db_url,
    }
    async with stdio_session(tmp_path, env=env) as session:
        for kind in ("security", "performance"):
            got = await call(session, "get_advisors", {"type": kind, "schemas": [s]})
            assert EXPECTED[kind] <= _keys(_findings(got, s))
        text = await fail(session, "get_logs", {})
        assert "no_request_log" in text and "only available from a supalite server" in text


async def test_advisors_are_capped(live: Project) -> None:
    live.script(
        "create schema adv_many; "
        + " ".join(f"create table adv_many.t{i} (v int);" for i in range(8))
    )
    async with stdio_session(live.root, "--max-rows", "3") as session:
        got = await call(session, "get_advisors", {"type": "performance", "schemas": ["adv_many"]})
    assert got["row_count"] == 3 and got["truncated"] is True
    assert "3 of 8 findings shown" in got["note"]
    assert got["counts"] == {"ERROR": 0, "WARN": 0, "INFO": 8}
    assert {f["name"] for f in got["rows"]} == {"no_primary_key"}
