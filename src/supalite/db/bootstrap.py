"""Bootstrap SQL: versioned steps in `sql/bootstrap/NNNN_name.sql`, applied once each.

Applied under an advisory lock so several supalite processes starting together against one
database (workers, or a fleet on DATABASE_URL) apply each step exactly once.  The applied
versions live in `_supalite.bootstrap`; every step is also idempotent on its own, so a database
that already has Supabase's roles and schemas is left as it is.
"""

from __future__ import annotations

from importlib import resources

import asyncpg

from supalite.keys import derive

_LOCK_KEY = 0x5355_5041  # "SUPA": pg_advisory_lock key shared by every supalite process


def steps() -> list[tuple[int, str, str]]:
    """(version, name, sql) in order."""
    out = []
    for entry in resources.files("supalite.db").joinpath("sql/bootstrap").iterdir():
        if entry.name.endswith(".sql"):
            version, _, name = entry.name.removesuffix(".sql").partition("_")
            out.append((int(version), name, entry.read_text(encoding="utf-8")))
    return sorted(out)


def authenticator_password(jwt_secret: str) -> str:
    """The API pool's login password, derived from the JWT secret.

    Every process that can verify tokens already shares the JWT secret, so deriving the
    password from it lets a fleet of supalite processes connect as `authenticator` without
    another secret to distribute.
    """
    return derive(jwt_secret, "supalite-authenticator").hex()


async def bootstrap(admin_url: str, jwt_secret: str) -> list[int]:
    """Apply pending steps; return the versions applied now."""
    conn = await asyncpg.connect(admin_url)
    applied: list[int] = []
    try:
        await conn.execute("select pg_advisory_lock($1)", _LOCK_KEY)
        try:
            await conn.execute(
                "create schema if not exists _supalite;"
                "create table if not exists _supalite.bootstrap ("
                " version int primary key, name text not null,"
                " applied_at timestamptz not null default now())"
            )
            done = {
                r["version"] for r in await conn.fetch("select version from _supalite.bootstrap")
            }
            for version, name, sql in steps():
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute(
                        "insert into _supalite.bootstrap (version, name) values ($1, $2)",
                        version,
                        name,
                    )
                applied.append(version)
            # Always: the secret may have changed since the last start.
            await conn.execute(
                "select set_config('supalite.pw', $1, false)", authenticator_password(jwt_secret)
            )
            await conn.execute(
                "do $$ begin execute format('alter role authenticator with login password %L',"
                " current_setting('supalite.pw')); end $$;"
                "select set_config('supalite.pw', '', false)"
            )
        finally:
            await conn.execute("select pg_advisory_unlock($1)", _LOCK_KEY)
    finally:
        await conn.close()
    return applied
