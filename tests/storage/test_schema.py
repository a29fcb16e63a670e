"""The `storage` schema as Supabase leaves it: tables and columns, the path helpers, RLS on
with no policies, the API roles' grants, service_role bypassing RLS."""

from __future__ import annotations

import asyncio

import asyncpg

from tests.storage.conftest import StorageServer


def test_tables_and_columns(storage: StorageServer) -> None:
    cols = {
        (r["table_name"], r["column_name"]): r["data_type"]
        for r in storage.auth.sql(
            "select table_name, column_name, data_type from information_schema.columns"
            " where table_schema = 'storage'"
        )
    }
    for c, t in {"id": "text", "name": "text", "owner": "uuid", "owner_id": "text",
                 "public": "boolean", "file_size_limit": "bigint",
                 "allowed_mime_types": "ARRAY", "created_at": "timestamp with time zone",
                 "updated_at": "timestamp with time zone"}.items():  # fmt: skip
        assert cols[("buckets", c)] == t, c
    for c, t in {"id": "uuid", "bucket_id": "text", "name": "text", "owner": "uuid",
                 "owner_id": "text", "metadata": "jsonb", "user_metadata": "jsonb",
                 "path_tokens": "ARRAY", "version": "text",
                 "last_accessed_at": "timestamp with time zone"}.items():  # fmt: skip
        assert cols[("objects", c)] == t, c
    generated = storage.auth.sql(
        "select is_generated from information_schema.columns where table_schema = 'storage'"
        " and table_name = 'objects' and column_name = 'path_tokens'"
    )
    assert generated[0]["is_generated"] == "ALWAYS"


def test_helpers(storage: StorageServer) -> None:
    r = storage.auth.sql(
        "select storage.foldername('a/b/c.png') as f, storage.filename('a/b/c.png') as n,"
        " storage.extension('a/b/c.tar.gz') as e, storage.foldername('top.txt') as t"
    )[0]
    assert r["f"] == ["a", "b"] and r["n"] == "c.png" and r["e"] == "gz" and r["t"] == []


def test_rls_on_and_no_policies(storage: StorageServer) -> None:
    rows = storage.auth.sql(
        "select relname, relrowsecurity from pg_class where relnamespace = 'storage'::regnamespace"
        " and relname in ('buckets', 'objects') order by relname"
    )
    assert [(r["relname"], r["relrowsecurity"]) for r in rows] == [
        ("buckets", True), ("objects", True),
    ]  # fmt: skip
    assert storage.auth.sql("select 1 from pg_policies where schemaname = 'storage'") == []


def test_grants_and_bypass(storage: StorageServer) -> None:
    async def as_role(role: str) -> list[int]:
        conn = await asyncpg.connect(storage.server.info["DB URL"])
        try:
            async with conn.transaction():
                await conn.execute(f"set local role {role}")
                return [
                    await conn.fetchval("select count(*) from storage.buckets"),
                    await conn.fetchval("select count(*) from storage.objects"),
                ]
        finally:
            await conn.close()

    configured = 1  # the bucket from the [storage.buckets.configured] section
    assert asyncio.run(as_role("service_role"))[0] == configured
    for role in ("anon", "authenticated"):  # granted, but RLS hides every row
        assert asyncio.run(as_role(role)) == [0, 0]
