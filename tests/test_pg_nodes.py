"""The node-tree reader on views' stored queries, with literals that look like syntax."""

from __future__ import annotations

import asyncpg

from supalite.db.pg_nodes import parse_node_tree, view_pass_throughs


def test_tokens_escapes_nulls_and_bytes() -> None:
    tree = parse_node_tree(r"({QUERY :a 1 :b <> :c a\ b\}\) :d [ 1 0 0 0 ] :e ({X :f}) :g})")
    assert tree == [
        {"_node": "QUERY", "a": "1", "b": None, "c": "a b})", "d": "1 0 0 0",
         "e": [{"_node": "X", "f": None}], "g": None}
    ]  # fmt: skip


async def test_view_columns_that_pass_through(admin_conn: asyncpg.Connection) -> None:
    await admin_conn.execute(
        """
        drop schema if exists nodes cascade;
        create schema nodes;
        create table nodes.t (id int primary key, "odd name" text, n int);
        create view nodes.v as
          select t.id as key, t."odd name", t.n + 1 as computed,
                 'a (literal) {with} :tricky \\ chars' as lit,
                 (select max(id) from nodes.t) as sub
          from nodes.t where t."odd name" <> ') :resorigtbl 1 (';
        """
    )
    query = await admin_conn.fetchval(
        "select ev_action::text from pg_rewrite where ev_class = 'nodes.v'::regclass"
    )
    table = await admin_conn.fetchval("select 'nodes.t'::regclass::oid")
    found = {(p.column, p.table_oid, p.attnum) for p in view_pass_throughs(query)}
    assert found == {("key", table, 1), ("odd name", table, 2)}
    await admin_conn.execute("drop schema nodes cascade")
