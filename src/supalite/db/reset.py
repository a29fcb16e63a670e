"""`supalite db reset`: start again from an empty database (bootstrap, migrations, seed follow).

The embedded cluster's database is dropped and recreated.  On a DATABASE_URL server, where the
database itself may not be ours to drop, every non-system schema is dropped instead.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import asyncpg

from supalite.db.schema_cache import quote_ident
from supalite.runtime import Runtime

_SYSTEM_SCHEMAS = ("information_schema",)


def _other_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


async def reset_database(runtime: Runtime) -> None:
    if runtime.pg is not None:
        conn = await asyncpg.connect(_other_database(runtime.admin_url, "template1"))
        try:
            await conn.execute("drop database if exists postgres with (force)")
            await conn.execute("create database postgres")
        finally:
            await conn.close()
        return
    conn = await asyncpg.connect(runtime.admin_url)
    try:
        schemas = await conn.fetch(
            "select nspname from pg_namespace where nspname !~ '^pg_' and nspname <> all($1)",
            list(_SYSTEM_SCHEMAS),
        )
        async with conn.transaction():
            for row in schemas:
                # Identifiers cannot be bind parameters: quoted from the catalog's own name.
                await conn.execute(f"drop schema {quote_ident(row['nspname'])} cascade")
            await conn.execute("create schema if not exists public")
    finally:
        await conn.close()
