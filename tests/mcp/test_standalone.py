"""`supalite mcp` against another supalite known only by URL and keys — the environment a
Supabase project's users set — first through its /pg path, then with DATABASE_URL (the direct
path a hosted Supabase project needs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.mcp.conftest import Project, call, fail, stdio_session


def _env(p: Project, **extra: str) -> dict[str, str]:
    return {
        "SUPABASE_URL": p.url,
        "SUPABASE_ANON_KEY": p.server.anon_key,
        "SUPABASE_SERVICE_ROLE_KEY": p.server.service_key,
        **extra,
    }


async def test_by_url_and_keys(second: Project, tmp_path: Path) -> None:
    async with stdio_session(tmp_path, env=_env(second)) as s:  # no project folder here
        assert (await call(s, "get_project_url"))["url"] == second.url
        keys = await call(s, "get_publishable_keys")
        assert keys["keys"] == [{"name": "anon", "type": "legacy",
                                 "api_key": second.server.anon_key}]  # fmt: skip
        got = await call(s, "apply_migration", {
            "name": "standalone", "query": "create table public.remote_rows (id int primary key, "
            "v text); alter table public.remote_rows enable row level security;"})  # fmt: skip
        assert got["success"] is True
        await call(s, "insert", {"table": "remote_rows", "rows": [{"id": 1, "v": "a"}]})
        got = await call(s, "query", {"table": "remote_rows"})
        assert got["rows"] == [{"id": 1, "v": "a"}]
        got = await call(s, "execute_sql", {"query": "select count(*)::int as n from remote_rows"})
        assert got["rows"] == [{"n": 1}]
        listed = await call(s, "list_migrations")
        assert "standalone" in {m["name"] for m in listed["migrations"]}
    # Written where the server's project is, not where this client runs.
    assert list((second.root / "supabase" / "migrations").glob("*_standalone.sql"))
    assert not (tmp_path / "supabase").exists()
    assert second.sql("select v from remote_rows") == [("a",)]


async def test_with_database_url(second: Project, tmp_path: Path) -> None:
    env = _env(second, DATABASE_URL=second.db_url)
    async with stdio_session(tmp_path, env=env) as s:
        who = await call(s, "execute_sql", {"query": "select current_user"})
        assert who["rows"] == [{"current_user": "postgres"}]  # straight to the database
        ddl = "create table public.direct_t (id int);"
        got = await call(s, "apply_migration", {"name": "direct_one", "query": ddl})
        assert got["success"] is True and "file" not in got
        assert second.sql(
            "select name from supabase_migrations.schema_migrations where version = $1",
            got["version"],
        ) == [("direct_one",)]
        text = await fail(s, "execute_sql", {"query": "insert into direct_t values (1)",
                                             "read_only": True})  # fmt: skip
        assert "25006" in text
        text = await fail(s, "execute_sql", {"query": "select 1; select 2"})
        assert "exactly one statement" in text
    async with stdio_session(tmp_path, "--read-only", env=env) as s:
        text = await fail(s, "execute_sql", {"query": "create table public.direct_u (id int)"})
        assert "25006" in text
    assert second.sql("select count(*) from direct_t") == [(0,)]


async def test_json_config_file(second: Project, tmp_path: Path) -> None:
    """The JSON shape Supabase MCP servers read (`url`, `keys`) names the project."""
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"supabase": {
        "url": second.url,
        "keys": {"anon": second.server.anon_key, "serviceRole": second.server.service_key},
    }}))  # fmt: skip
    async with stdio_session(tmp_path, "--config", str(config)) as s:
        assert (await call(s, "get_project_url"))["url"] == second.url
        keys = await call(s, "get_publishable_keys")
        assert keys["keys"][0]["api_key"] == second.server.anon_key
        got = await call(s, "execute_sql", {"query": "select current_database() as db"})
        assert got["rows"] == [{"db": "postgres"}]


async def test_flags_instead_of_environment(second: Project, tmp_path: Path) -> None:
    args = ["--url", second.url, "--service-key", second.server.info["Secret key"],
            "--features", "database"]  # fmt: skip
    async with stdio_session(tmp_path, *args) as s:
        names = {t.name for t in (await s.list_tools()).tools}
        assert "query" not in names and "execute_sql" in names
        got = await call(s, "list_schemas")
        assert "public" in {r["name"] for r in got["schemas"]}


@pytest.mark.parametrize(
    "args", [["--features", "nope"], ["--tools", "query,drop_everything"], ["--tools", "x"]]
)
async def test_bad_selection_is_reported(tmp_path: Path, args: list[str]) -> None:
    from tests.helpers import supalite

    r = supalite("mcp", *args, cwd=tmp_path)
    assert r.returncode == 2 and "supalite mcp:" in r.stderr and r.stdout == ""


async def test_no_project_and_no_environment(tmp_path: Path) -> None:
    from tests.helpers import supalite

    r = supalite("mcp", cwd=tmp_path, env={"SUPABASE_URL": "", "SUPABASE_SERVICE_ROLE_KEY": ""})
    assert r.returncode == 1 and r.stdout == ""
    assert "no supalite is running" in r.stderr and "SUPABASE_URL" in r.stderr
