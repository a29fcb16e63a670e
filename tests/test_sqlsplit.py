"""Statement splitting for migrations: what can hide a semicolon, and line numbers."""

from __future__ import annotations

from supalite.db.sqlsplit import split_sql


def sqls(text: str) -> list[str]:
    return [s.sql for s in split_sql(text)]


def test_simple_statements_and_lines() -> None:
    stmts = split_sql("create table a (x int);\n\n  insert into a values (1);\nselect 1")
    assert [(s.sql, s.line) for s in stmts] == [
        ("create table a (x int);", 1),
        ("insert into a values (1);", 3),
        ("select 1", 4),
    ]


def test_semicolons_inside_quotes_comments_and_dollar_quotes() -> None:
    text = (
        "select 'a;b', \"we;ird\";\n"
        "-- a comment; with a semicolon\n"
        "/* block; /* nested; */ still comment; */ select 2;\n"
        "create function f() returns text language plpgsql as $fn$ begin return ';'; end $fn$;\n"
        "select $$x;y$$;\n"
        "select E'it\\'s;';\n"
        "select 'it''s;';\n"
    )
    assert sqls(text) == [
        "select 'a;b', \"we;ird\";",
        "-- a comment; with a semicolon\n/* block; /* nested; */ still comment; */ select 2;",
        "create function f() returns text language plpgsql as $fn$ begin return ';'; end $fn$;",
        "select $$x;y$$;",
        "select E'it\\'s;';",
        "select 'it''s;';",
    ]


def test_begin_atomic_bodies_stay_whole() -> None:
    text = (
        "create function g(a int) returns int language sql\n"
        "begin atomic\n  select case when a > 0 then 1 else 0 end;\n  select a;\nend;\n"
        "select 3;"
    )
    out = sqls(text)
    assert len(out) == 2 and out[0].endswith("end;") and out[1] == "select 3;"


def test_comment_only_and_empty_chunks_are_dropped() -> None:
    assert sqls("  \n-- nothing here\n;\n/* nor here */") == []
    assert sqls("") == []


def test_dollar_param_is_not_a_quote() -> None:
    assert sqls("prepare p as select $1;\nselect 2;") == ["prepare p as select $1;", "select 2;"]
