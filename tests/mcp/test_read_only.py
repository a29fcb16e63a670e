"""`supalite mcp --read-only`: write tools are not listed, and SQL cannot write by any route."""

from __future__ import annotations

from tests.mcp.conftest import Project, call, fail, stdio_session
from tests.mcp.test_stdio import ALL_TOOLS, WRITE_TOOLS

WRITES = [
    ("insert into todos (title) values ('ro')", "25006"),
    ("with x as (insert into todos (title) values ('ro') returning id) select * from x", "25006"),
    ("select add_todo('ro')", "25006"),  # a volatile function that writes
    ("do $$ begin insert into todos (title) values ('ro'); end $$", "25006"),
    ("create table ro_table (id int)", "25006"),
    ("select nextval('todos_id_seq')", "42501"),  # no grant on it, and read-only besides
    ("drop table todos", "25006"),  # no confirmation asked: it cannot happen anyway
    ("copy todos from stdin", ""),
    ("set role postgres", "42501"),
    ("set session authorization postgres", "42501"),
    ("select set_config('role', 'service_role', false)", "42501"),
]


async def test_write_tools_absent_and_refused(live: Project) -> None:
    async with stdio_session(live.root, "--read-only") as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        assert set(tools) == ALL_TOOLS - WRITE_TOOLS
        sql_tool = tools["execute_sql"]
        assert sql_tool.annotations is not None and sql_tool.annotations.read_only_hint is True
        for name in WRITE_TOOLS:
            text = await fail(s, name, {"table": "todos", "rows": {"title": "ro"}})
            assert "unknown_tool" in text and "read-only" in text
        # Reads still work.
        assert (await call(s, "query", {"table": "big", "limit": 1}))["row_count"] == 1


async def test_sql_cannot_write(live: Project) -> None:
    async with stdio_session(live.root, "--read-only") as s:
        who = await call(s, "execute_sql", {"query": "select current_user, session_user"})
        assert who["rows"] == [{"current_user": "supalite_read_only",
                                "session_user": "supalite_read_only"}]  # fmt: skip
        assert who["read_only"] is True
        for sql, code in WRITES:
            text = await fail(s, "execute_sql", {"query": sql})
            assert code in text, (sql, text)
        # EXPLAIN ANALYZE runs the statement: still read-only.
        text = await fail(s, "explain_query", {"query": "insert into todos (title) values ('ro')",
                                               "analyze": True})  # fmt: skip
        assert "25006" in text
        # A function that writes, called through the Data API, runs read-only too.
        # (The Data API refuses GET of a volatile function; one that lies about its
        # volatility would meet the read-only transaction.)
        text = await fail(s, "rpc", {"name": "add_todo", "args": {"title": "ro"}})
        assert "PGRST101" in text or "25006" in text
        assert (await call(s, "rpc", {"name": "count_todos"}))["row_count"] == 1
    assert live.sql("select count(*) from todos where title = 'ro'") == [(0,)]
    assert live.sql("select to_regclass('public.todos') is not null, "
                    "to_regclass('public.ro_table') is null") == [(True, True)]  # fmt: skip


async def test_the_role_itself_cannot_reach_the_host(live: Project) -> None:
    """With the parser's refusal switched off, the read-only role is still stopped by Postgres."""
    async with stdio_session(live.root, "--read-only", "--allow-host-access") as s:
        for sql in ["select pg_read_file('/etc/hostname')",
                    "copy (select 1) to '/tmp/mcp-ro-copy'",
                    "copy todos to program 'cat'"]:  # fmt: skip
            text = await fail(s, "execute_sql", {"query": sql})
            assert "42501" in text or "25006" in text, (sql, text)


async def test_read_only_flag_per_call(live: Project) -> None:
    async with stdio_session(live.root) as s:
        text = await fail(s, "execute_sql", {"query": "insert into todos (title) values ('ro')",
                                             "read_only": True})  # fmt: skip
        assert "25006" in text
    assert live.sql("select count(*) from todos where title = 'ro'") == [(0,)]


async def test_features_and_tools_filters(live: Project) -> None:
    async with stdio_session(live.root, "--features", "development") as s:
        names = {t.name for t in (await s.list_tools()).tools}
        assert names == {"get_project_url", "get_publishable_keys", "generate_typescript_types",
                         "generate_python_types"}  # fmt: skip
    async with stdio_session(live.root, "--tools", "query,execute_sql,insert", "--read-only") as s:
        names = {t.name for t in (await s.list_tools()).tools}
        assert names == {"query", "execute_sql"}
