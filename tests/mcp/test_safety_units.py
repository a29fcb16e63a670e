"""The SQL checks and PostgREST parameter building, case by case (no server needed)."""

from __future__ import annotations

import time

import pytest

from supalite.mcp.safety import Confirmations, check_sql, tokenize, wrap_untrusted
from supalite.mcp.tools.data import ArgError, filter_params


@pytest.mark.parametrize(
    ("sql", "found"),
    [
        ("DROP TABLE t", ["DROP TABLE"]),
        ("drop schema s cascade", ["DROP SCHEMA"]),
        ("Truncate t", ["TRUNCATE"]),
        ("delete from t", ["DELETE without WHERE"]),
        ("update t set a = 1", ["UPDATE without WHERE"]),
        ("alter table t drop column c", ["DROP COLUMN"]),
        ("with d as (delete from t returning *) select * from d", ["DELETE without WHERE"]),
        ("with u as (update t set a = 1 returning *) select 1", ["UPDATE without WHERE"]),
        (
            "with d as (delete from t where id = 1 returning *) delete from t",
            ["DELETE without WHERE"],
        ),
        ("update t set a = (select b from u where u.id = 1)", ["UPDATE without WHERE"]),
        ("explain (analyze) delete from t", ["DELETE without WHERE"]),
        ("do $$ begin execute 'truncate t'; end $$", ["TRUNCATE"]),
        ("do $body$ begin if x then delete from t; end if; end $body$", ["DELETE without WHERE"]),
        # Not destructive.
        ("delete from t where id = 1", []),
        ("update t set a = 1 where id = 1", []),
        ("select 'drop table t', $$truncate t$$", []),
        ('select "drop" from t', []),
        ("-- drop table t\nselect 1", []),
        ("/* delete from t /* nested */ */ select 1", []),
        ("alter table t alter column c drop not null", []),
        ("alter table t alter column c drop default", []),
        ("select * from t for update", []),
        ("grant select, update, delete on t to anon", []),
        ("insert into t values (1) on conflict (id) do update set a = 1", []),
        ("create table t (id int references u on delete cascade on update cascade)", []),
    ],
)
def test_destructive(sql: str, found: list[str]) -> None:
    check = check_sql(sql)
    assert check.refused is None
    assert check.destructive == found


@pytest.mark.parametrize(
    "sql",
    [
        "select 1; select 2",
        "select 1;;select 2",
        "select 'a'; drop table t",
        "select $x$ ; $x$; drop table t",
        "select 1 -- comment ;\n; drop table t",
    ],
)
def test_more_than_one_statement(sql: str) -> None:
    assert "exactly one statement" in (check_sql(sql).refused or "")


@pytest.mark.parametrize(
    "sql",
    ["select 'a;b'", "select $$;$$", "select 1;", "select 1; -- trailing", 'select ";" from t'],
)
def test_one_statement(sql: str) -> None:
    assert check_sql(sql).refused is None


@pytest.mark.parametrize(
    "sql",
    [
        "select pg_read_file('/etc/passwd')",
        "select PG_READ_BINARY_FILE('/x')",
        "select * from pg_catalog.pg_ls_dir('.')",
        "select lo_import('/etc/passwd')",
        "copy t to program 'x'",
        "copy t from '/etc/passwd'",
        "COPY t TO E'/tmp/x'",
        "select dblink_exec('h', 'drop table t')",
        # SQL inside strings: a function body, a DO block's dynamic SQL.
        "create function f() returns text language sql as $$ select pg_read_file('/x') $$",
        "do $$ begin execute 'copy t to program ''cat'''; end $$",
        "do $$ begin perform lo_import ('/etc/passwd'); end $$",
    ],
)
def test_host_boundary(sql: str) -> None:
    assert check_sql(sql).refused
    assert check_sql(sql, allow_host_access=True).refused is None


def test_host_names_in_strings_are_fine() -> None:
    assert check_sql("select 'pg_read_file is refused'").refused is None
    assert check_sql("copy t to stdout").refused is None


def test_tokenizer() -> None:
    toks = tokenize("select E'it\\'s', 'a''b', \"Q\"\"x\", $t$ x $t$ -- c\n/* d */ ;")
    assert [(t.kind, t.text) for t in toks] == [
        ("word", "select"), ("string", "it\\'s"), ("punct", ","), ("string", "a'b"),
        ("punct", ","), ("ident", 'Q"x'), ("punct", ","), ("string", " x "), ("punct", ";"),
    ]  # fmt: skip


def test_confirmations() -> None:
    c = Confirmations()
    cid = c.issue("drop table t")
    assert c.check("drop table t", cid) and c.check("  drop table t \n", cid)
    assert not c.check("drop table u", cid)
    assert not Confirmations().check("drop table t", cid)  # another server's id
    expired = f"{int(time.time()) - 1}-{cid.partition('-')[2]}"
    assert not c.check("drop table t", expired)
    assert not c.check("drop table t", "garbage")


def test_wrap_untrusted() -> None:
    text = wrap_untrusted("rows", '[{"a": 1}]', "b1")
    assert '\n<untrusted-data-b1>\n[{"a": 1}]\n</untrusted-data-b1>\n' in text


def test_filter_params() -> None:
    assert filter_params({"a": 1, "b": None, "c": True, "d": "x,y"}, None) == [
        ("a", "eq.1"), ("b", "is.null"), ("c", "eq.true"), ("d", "eq.x,y")]  # fmt: skip
    assert filter_params({"a": {"in": ["x,y", 'q"t', "b\\s", 3]}}, None) == [
        ("a", 'in.("x,y","q\\"t","b\\\\s",3)')]  # fmt: skip
    assert filter_params({"a": {"gte": 1, "lt": 5}}, "b.eq.1,c.eq.2") == [
        ("a", "gte.1"), ("a", "lt.5"), ("or", "(b.eq.1,c.eq.2)")]  # fmt: skip
    assert filter_params({"a": {"is": False}}, None) == [("a", "is.false")]
    for bad in [{"a": {"near": 1}}, {"a": {"in": "x"}}, {"a": {"is": "maybe"}}, {"select": 1},
                {"a": {}}, {"a": [1, 2]}, "a=1"]:  # fmt: skip
        with pytest.raises(ArgError):
            filter_params(bad, None)
