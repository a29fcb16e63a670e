"""User migrations in `supabase/migrations/<version>_<name>.sql`, as the Supabase CLI keeps them.

Each file is applied in its own transaction, statement by statement, and recorded in
`supabase_migrations.schema_migrations (version, name, statements)`.  A failing statement rolls
back its whole file and is reported with the file, the line and Postgres's message.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from supalite.db.sqlsplit import Statement, split_sql

_FILE = re.compile(r"^(\d+)_(.*)\.sql$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")


class MigrationError(Exception):
    """One line: where it failed and why."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    def statements(self) -> list[Statement]:
        try:
            return split_sql(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as e:
            raise MigrationError(f"{self.path}: cannot read: {e}") from e


def local_migrations(supabase_dir: Path) -> list[Migration]:
    folder = supabase_dir / "migrations"
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = _FILE.match(p.name)
        if m and p.is_file():
            found.append(Migration(m.group(1), m.group(2), p))
    versions = [m.version for m in found]
    dupes = {v for v in versions if versions.count(v) > 1}
    if dupes:
        raise MigrationError(f"{folder}: more than one migration has version {sorted(dupes)[0]}")
    return sorted(found, key=lambda m: (int(m.version), m.version))


def new_migration(supabase_dir: Path, name: str) -> Path:
    if not _NAME.match(name):
        raise MigrationError(
            f"invalid migration name '{name}': use letters, digits, '_' and '-' only"
        )
    folder = supabase_dir / "migrations"
    folder.mkdir(parents=True, exist_ok=True)
    version = time.strftime("%Y%m%d%H%M%S", time.gmtime())
    # Two in the same second would share a version; step forward like the CLI's timestamps do.
    taken = {m.version for m in local_migrations(supabase_dir)}
    while version in taken:
        version = str(int(version) + 1)
    path = folder / f"{version}_{name}.sql"
    path.write_text("")
    return path


async def applied_versions(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch("select version from supabase_migrations.schema_migrations")
    return {r["version"] for r in rows}


def _describe(e: asyncpg.PostgresError) -> str:
    msg = f"ERROR: {e} (SQLSTATE {e.sqlstate})"
    detail = getattr(e, "detail", None)
    return f"{msg} — {detail}" if detail else msg


def _error_line(stmt: Statement, e: asyncpg.PostgresError) -> int:
    """The statement's line, moved to the error's position when Postgres gives one."""
    pos = getattr(e, "position", None)
    try:
        offset = int(pos) - 1 if pos else -1
    except (TypeError, ValueError):
        offset = -1
    if 0 <= offset <= len(stmt.sql):
        return stmt.line + stmt.sql.count("\n", 0, offset)
    return stmt.line


async def _run(conn: asyncpg.Connection, path: Path, statements: list[Statement]) -> None:
    """Run the statements (inside the caller's transaction); name file and line on failure."""
    for stmt in statements:
        try:
            await conn.execute(stmt.sql)
        except asyncpg.PostgresError as e:
            raise MigrationError(f"{path}:{_error_line(stmt, e)}: {_describe(e)}") from e


async def push(conn: asyncpg.Connection, supabase_dir: Path) -> list[Migration]:
    """Apply every local migration not yet recorded, in version order."""
    done = await applied_versions(conn)
    applied = []
    for mig in local_migrations(supabase_dir):
        if mig.version in done:
            continue
        statements = mig.statements()
        async with conn.transaction():
            await _run(conn, mig.path, statements)
            await conn.execute(
                "insert into supabase_migrations.schema_migrations (version, name, statements)"
                " values ($1, $2, $3)",
                mig.version,
                mig.name,
                [s.sql for s in statements],
            )
        applied.append(mig)
    return applied


async def seed(conn: asyncpg.Connection, supabase_dir: Path, paths: tuple[str, ...]) -> list[Path]:
    """Run the seed files (globs relative to supabase/), each in one transaction."""
    ran = []
    for pattern in paths:
        pattern = pattern.removeprefix("./")
        for p in sorted(supabase_dir.glob(pattern)):
            if p.is_file():
                async with conn.transaction():
                    await _run(conn, p, split_sql(p.read_text(encoding="utf-8")))
                ran.append(p)
    return ran
