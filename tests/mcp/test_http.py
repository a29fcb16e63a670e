"""The MCP server over streamable HTTP at /mcp on a running supalite, and the /pg admin path."""

from __future__ import annotations

import httpx
import pytest

from tests.mcp.conftest import Project, call, fail, http_session
from tests.mcp.test_stdio import ALL_TOOLS, WRITE_TOOLS

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {},
    "clientInfo": {"name": "t", "version": "0"}}}  # fmt: skip
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


@pytest.mark.parametrize("key", ["", "anon", "bogus", "publishable"])
def test_mcp_needs_a_key(live: Project, key: str) -> None:
    """No key or a forged token: 401.  The anon or publishable key: user mode (the auth
    tools can sign in; RLS applies), see test_user_mode.py."""
    headers = dict(MCP_HEADERS)
    if key == "anon":
        headers["Authorization"] = f"Bearer {live.server.anon_key}"
    elif key == "bogus":
        headers["Authorization"] = "Bearer not.a.jwt"
    elif key == "publishable":
        headers["apikey"] = live.server.info["Publishable key"]
    r = httpx.post(live.url + "/mcp", json=INIT, headers=headers, timeout=30)
    assert r.status_code == (401 if key in ("", "bogus") else 200), r.text
    if r.status_code == 401:
        assert r.json()["error"] == "unauthorized"
    else:  # a session id for the client to echo, so a sign-in can last
        assert r.headers["mcp-session-id"]
    assert "Traceback" not in r.text


async def test_main_tools_over_http(live: Project) -> None:
    async with http_session(live.url, live.server.service_key) as s:
        assert {t.name for t in (await s.list_tools()).tools} == ALL_TOOLS
        got = await call(s, "apply_migration", {
            "name": "http_items", "query": "create table public.http_items "
            "(id int primary key, label text);"})  # fmt: skip
        assert got["success"] is True
        got = await call(s, "insert", {"table": "http_items", "rows": [
            {"id": 1, "label": "one"}, {"id": 2, "label": "two"}]})  # fmt: skip
        assert got["row_count"] == 2
        got = await call(s, "query", {"table": "http_items", "filters": {"id": {"gt": 1}}})
        assert got["rows"] == [{"id": 2, "label": "two"}]
        got = await call(s, "update", {"table": "http_items", "values": {"label": "uno"},
                                       "filters": {"id": 1}})  # fmt: skip
        assert got["rows"][0]["label"] == "uno"
        got = await call(s, "execute_sql", {"query": "select label from http_items order by id"})
        assert [r["label"] for r in got["rows"]] == ["uno", "two"]
        tables = await call(s, "list_tables")
        assert "http_items" in {t["name"] for t in tables["tables"]}
        assert (await call(s, "get_project_url"))["url"] == live.url
        text = await fail(s, "execute_sql", {"query": "drop table http_items"})
        assert "confirmation_required" in text
        got = await call(s, "delete", {"table": "http_items", "filters": {"id": 2}})
        assert got["rows"] == [{"id": 2, "label": "two"}]
    migration = list((live.root / "supabase" / "migrations").glob("*_http_items.sql"))
    assert len(migration) == 1


async def test_secret_key_as_bearer_and_read_only_url(live: Project) -> None:
    secret = live.server.info["Secret key"]
    async with http_session(live.url, secret) as s:
        assert (await call(s, "get_project_url"))["url"] == live.url
    async with http_session(live.url + "/mcp?read_only=true", secret, path="") as s:
        names = {t.name for t in (await s.list_tools()).tools}
        assert names == ALL_TOOLS - WRITE_TOOLS
        text = await fail(s, "execute_sql", {"query": "insert into todos (title) values ('h')"})
        assert "25006" in text
    assert live.sql("select count(*) from todos where title = 'h'") == [(0,)]


def test_pg_admin_path(live: Project) -> None:
    with httpx.Client(base_url=live.url, timeout=30) as http:
        r = http.post("/pg/query", json={"query": "select 1"})
        assert r.status_code == 401
        r = http.post("/pg/query", json={"query": "select 1"},
                      headers={"apikey": live.server.anon_key})  # fmt: skip
        assert r.status_code == 403 and r.json()["code"] == "42501"
        svc = {"apikey": live.server.service_key}
        r = http.post("/pg/query", headers=svc, json={
            "query": "select g as n, $1::text as p from generate_series(1, 100) g",
            "parameters": ["x"], "max_rows": 5})  # fmt: skip
        body = r.json()
        assert r.status_code == 200 and body["row_count"] == 5 and body["truncated"] is True
        assert body["rows"][0] == {"n": 1, "p": "x"}
        assert body["columns"] == [{"name": "n", "type": "int4"}, {"name": "p", "type": "text"}]
        r = http.post("/pg/query", headers=svc, json={"query": "select * from nope"})
        assert r.status_code == 400 and r.json()["code"] == "42P01"
        assert "nope" in r.json()["message"]
        r = http.post("/pg/query", headers=svc, content=b"{not json")
        assert r.status_code == 400 and r.json()["code"] == "22P02"
        r = http.post("/pg/query", headers=svc, json={"query": "select 1", "max_rows": -1})
        assert r.status_code == 400
        r = http.post("/pg/query", headers=svc, json={"query": "create table pg_ro (id int)",
                                                      "read_only": True})  # fmt: skip
        assert r.status_code == 400 and r.json()["code"] == "25006"
        r = http.get("/pg/migrations", headers=svc)
        assert r.status_code == 200 and isinstance(r.json(), list)
        r = http.post("/pg/migrations", headers=svc, json={"name": "bad name!", "query": "x"})
        assert r.status_code == 400


def test_service_key_as_apikey_header(live: Project) -> None:
    headers = {**MCP_HEADERS, "apikey": live.server.service_key}
    r = httpx.post(live.url + "/mcp", json=INIT, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["result"]["serverInfo"]["name"] == "supalite"
