"""Admin SQL, independent of HTTP: one statement with row and byte caps, migrations.

Used by `/pg` (routes.py) on supalite and, over a direct `DATABASE_URL`, by the MCP server's
backend, so both paths answer in the same shape.  Every function takes a connection the caller
owns; the caller decides who it is logged in as (see `read_only_login`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from supalite.db.migrations import local_migrations
from supalite.db.sqlsplit import split_sql
from supalite.keys import derive

READ_ONLY_ROLE = "supalite_read_only"
# Supabase's own read-only role: used over a direct DATABASE_URL when the login may switch to it.
SUPABASE_READ_ONLY_ROLE = "supabase_read_only_user"
HARD_MAX_ROWS = 10_000
HARD_MAX_BYTES = 10 * 1024 * 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")


@dataclass
class PgError(Exception):
    """A failure with Postgres's SQLSTATE (or one of ours) and message: rendered, never raised
    past the edge."""

    code: str
    message: str
    status: int = 400
    detail: str | None = None
    hint: str | None = None
    position: int | None = None

    def __str__(self) -> str:
        return self.message

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        for k in ("detail", "hint", "position"):
            v = getattr(self, k)
            if v is not None:
                out[k] = v
        return out

    @classmethod
    def from_postgres(cls, e: asyncpg.PostgresError) -> PgError:
        pos = getattr(e, "position", None)
        try:
            position = int(pos) if pos else None
        except (TypeError, ValueError):
            position = None
        return cls(
            code=str(e.sqlstate or "XX000"),
            message=str(getattr(e, "message", None) or e),
            detail=getattr(e, "detail", None) or None,
            hint=getattr(e, "hint", None) or None,
            position=position,
        )


@dataclass
class QueryResult:
    columns: list[dict[str, str]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False  # more rows (or bytes) than the caps allowed were produced
    command: str = ""  # Postgres's command tag, e.g. "SELECT 3", "CREATE TABLE"

    def as_json(self) -> dict[str, Any]:
        return {
            "columns": self.columns,
            "rows": self.rows,
            "row_count": len(self.rows),
            "truncated": self.truncated,
            "command": self.command,
        }


def _json_value(v: Any, type_name: str) -> Any:
    """A Python value from asyncpg as JSON.  Decimals stay exact as strings."""
    if v is None or isinstance(v, (bool, int, float, str)):
        if isinstance(v, str) and type_name in ("json", "jsonb"):
            try:
                return json.loads(v)
            except ValueError:
                return v
        return v
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return str(v)
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(v).hex()
    if isinstance(v, (list, tuple)):
        return [_json_value(x, "") for x in v]
    if isinstance(v, asyncpg.Record):
        return {k: _json_value(x, "") for k, x in v.items()}
    if isinstance(v, dict):
        return {str(k): _json_value(x, "") for k, x in v.items()}
    return str(v)


async def run_statement(
    conn: asyncpg.Connection,
    query: str,
    parameters: list[Any] | None = None,
    *,
    read_only: bool,
    max_rows: int,
    max_bytes: int,
    switch_role: str | None = None,
) -> QueryResult:
    """One statement in its own transaction (READ ONLY when asked), rows capped.

    `switch_role` is `SET LOCAL ROLE`d first: a role that cannot write, for read-only runs on a
    login that could.  Raises PgError."""
    max_rows = max(0, min(max_rows, HARD_MAX_ROWS))
    max_bytes = max(0, min(max_bytes, HARD_MAX_BYTES))
    try:
        async with conn.transaction(readonly=read_only):
            if switch_role:
                await conn.execute(f'SET LOCAL ROLE "{switch_role.replace(chr(34), chr(34) * 2)}"')
            stmt = await conn.prepare(query)
            attrs = stmt.get_attributes()
            result = QueryResult(columns=[{"name": a.name, "type": a.type.name} for a in attrs])
            if not attrs:
                await stmt.fetch(*(parameters or []))
            else:
                # A portal read in chunks: the caps stop the fetch, not a filter after it.
                cursor = await stmt.cursor(*(parameters or []))
                size = 2
                types = [a.type.name for a in attrs]
                while not result.truncated:
                    chunk = await cursor.fetch(min(500, max_rows + 1 - len(result.rows)))
                    if not chunk:
                        break
                    for rec in chunk:
                        row = {
                            a.name: _json_value(v, t)
                            for a, v, t in zip(attrs, rec, types, strict=True)
                        }
                        size += len(json.dumps(row, separators=(",", ":"))) + 1
                        if len(result.rows) >= max_rows or size > max_bytes:
                            result.truncated = True
                            break
                        result.rows.append(row)
            result.command = stmt.get_statusmsg() or ""
            if not result.command:
                result.command = query.split(None, 1)[0].upper() if query.strip() else ""
            return result
    except asyncpg.PostgresError as e:
        raise PgError.from_postgres(e) from e
    except asyncpg.InterfaceError as e:
        raise PgError("XX000", f"cannot run the statement: {e}") from e


# ------------------------------------------------------------------ read-only login


def read_only_password(jwt_secret: str) -> str:
    """The read-only login's password, derived from the JWT secret like `authenticator`'s."""
    return derive(jwt_secret, "supalite-read-only").hex()


async def ensure_read_only_login(conn: asyncpg.Connection, password: str) -> None:
    """A login that can read everything and write nothing: `pg_read_all_data`, read-only
    transactions by default, member of no role that can write, so `SET ROLE` leads nowhere.
    Idempotent; run as the database owner."""
    assert re.fullmatch(r"[0-9a-f]+", password)  # hex only: safe as a literal below
    async with conn.transaction():
        # Several worker processes may do this at once: one at a time (role DDL that races
        # fails with "tuple concurrently updated").
        await conn.execute("select pg_advisory_xact_lock(hashtext($1))", READ_ONLY_ROLE)
        await conn.execute(
            f"""
            do $$ begin
              if not exists (select 1 from pg_roles where rolname = '{READ_ONLY_ROLE}') then
                create role {READ_ONLY_ROLE} login inherit;
              end if;
            end $$;
            alter role {READ_ONLY_ROLE} with login inherit password '{password}';
            alter role {READ_ONLY_ROLE} set default_transaction_read_only = on;
            alter role {READ_ONLY_ROLE} set statement_timeout = '60s';
            grant pg_read_all_data to {READ_ONLY_ROLE};
            """
        )
    # Supabase's read-only user bypasses RLS too, so an admin sees every row; this needs a
    # superuser, which a DATABASE_URL login may not be: then RLS applies to its reads.
    with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
        await conn.execute(f"alter role {READ_ONLY_ROLE} bypassrls")


async def supabase_read_only_role(conn: asyncpg.Connection) -> str | None:
    """`supabase_read_only_user` when this login may switch to it (a Supabase project)."""
    ok = await conn.fetchval(
        "select pg_has_role(current_user, oid, 'MEMBER') from pg_roles where rolname = $1",
        SUPABASE_READ_ONLY_ROLE,
    )
    return SUPABASE_READ_ONLY_ROLE if ok else None


# ------------------------------------------------------------------ migrations


async def list_migrations(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    try:
        rows = await conn.fetch(
            "select version, name from supabase_migrations.schema_migrations order by version"
        )
    except asyncpg.UndefinedTableError:
        return []
    except asyncpg.PostgresError as e:
        raise PgError.from_postgres(e) from e
    return [{"version": r["version"], "name": r["name"]} for r in rows]


async def apply_migration(
    conn: asyncpg.Connection, name: str, query: str, supabase_dir: Path | None
) -> dict[str, Any]:
    """Run `query` (several statements) in one transaction, record it in
    `supabase_migrations.schema_migrations` as the Supabase CLI does and, when there is a local
    project, write `supabase/migrations/<version>_<name>.sql` so the CLI sees the same history."""
    if not _NAME.match(name):
        raise PgError("22023", f"invalid migration name '{name}': use letters, digits, _ and -")
    statements = split_sql(query)
    if not statements:
        raise PgError("22023", "the migration has no statements")
    folder = supabase_dir / "migrations" if supabase_dir and supabase_dir.is_dir() else None
    try:
        async with conn.transaction():
            await conn.execute(
                "create schema if not exists supabase_migrations;"
                "create table if not exists supabase_migrations.schema_migrations"
                " (version text primary key, statements text[], name text)"
            )
            taken = {r["version"] for r in await list_migrations(conn)}
            if folder is not None:
                taken |= {m.version for m in local_migrations(folder.parent)}
            version = time.strftime("%Y%m%d%H%M%S", time.gmtime())
            while version in taken:  # two in one second: step on, like the CLI's timestamps
                version = str(int(version) + 1)
            for stmt in statements:
                await conn.execute(stmt.sql)
            await conn.execute(
                "insert into supabase_migrations.schema_migrations (version, name, statements)"
                " values ($1, $2, $3)",
                version,
                name,
                [s.sql for s in statements],
            )
    except asyncpg.PostgresError as e:
        raise PgError.from_postgres(e) from e
    out: dict[str, Any] = {"version": version, "name": name, "statements": len(statements)}
    if folder is not None:
        path = folder / f"{version}_{name}.sql"
        text = query if query.endswith("\n") else query + "\n"
        try:
            path.write_text(text, encoding="utf-8")
            out["file"] = str(path)
        except OSError as e:  # applied and recorded; only the local copy is missing
            out["file_error"] = f"cannot write {path}: {e.strerror or e}"
    return out
