"""The deployed functions and secrets in the database (`_supalite.functions`,
`_supalite.function_secrets`, bootstrap step 0008).  Every change notifies CHANNEL in the same
transaction, so the other processes' caches (deployed.py) drop their copy when it commits.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from supalite.functions.deploy import Deployment

CHANNEL = "supalite_functions"
_NOTIFY = "select pg_notify('supalite_functions', $1)"
_META = (
    "id::text as id, slug, name, version, entrypoint, verify_jwt, import_map_path, sha256,"
    " created_at, updated_at"
)


async def list_functions(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return list(await conn.fetch(f"select {_META} from _supalite.functions order by slug"))


async def get_function(
    conn: asyncpg.Connection, slug: str, *, files: bool = False
) -> asyncpg.Record | None:
    extra = ", files::text as files" if files else ""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"select {_META}{extra} from _supalite.functions where slug = $1", slug
    )
    return row


async def get_files(conn: asyncpg.Connection, slug: str, sha256: str) -> dict[str, str] | None:
    """The files of exactly that content (None when the function changed meanwhile)."""
    text = await conn.fetchval(
        "select files::text from _supalite.functions where slug = $1 and sha256 = $2", slug, sha256
    )
    return None if text is None else dict(json.loads(text))


async def deploy(conn: asyncpg.Connection, d: Deployment) -> tuple[asyncpg.Record, bool]:
    """Create the function or store a new version of it; (the row, whether it was created)."""
    async with conn.transaction():
        row = await conn.fetchrow(
            f"""insert into _supalite.functions as f
                  (slug, name, entrypoint, verify_jwt, import_map_path, files, sha256)
                values ($1, $2, $3, $4, $5, $6::jsonb, $7)
                on conflict (slug) do update set
                  name = excluded.name, version = f.version + 1,
                  entrypoint = excluded.entrypoint, verify_jwt = excluded.verify_jwt,
                  import_map_path = excluded.import_map_path, files = excluded.files,
                  sha256 = excluded.sha256, updated_at = now()
                returning {_META}, (xmax = 0) as created""",
            d.slug, d.name, d.entrypoint, d.verify_jwt, d.import_map_path,
            json.dumps(d.files, ensure_ascii=False), d.sha256,
        )  # fmt: skip
        await conn.execute(_NOTIFY, d.slug)
    assert row is not None
    return row, bool(row["created"])


async def delete(conn: asyncpg.Connection, slug: str) -> bool:
    async with conn.transaction():
        gone = await conn.fetchval(
            "delete from _supalite.functions where slug = $1 returning true", slug
        )
        if gone:
            await conn.execute(_NOTIFY, slug)
    return bool(gone)


def as_api(row: asyncpg.Record) -> dict[str, Any]:
    """A function in the Management API's shape (times in milliseconds since the epoch)."""
    out: dict[str, Any] = {
        "id": row["id"],
        "slug": row["slug"],
        "name": row["name"],
        "status": "ACTIVE",
        "version": row["version"],
        "created_at": int(row["created_at"].timestamp() * 1000),
        "updated_at": int(row["updated_at"].timestamp() * 1000),
        "verify_jwt": row["verify_jwt"],
        "import_map": row["import_map_path"] is not None,
        "entrypoint_path": row["entrypoint"],
        "ezbr_sha256": row["sha256"],
    }
    if row["import_map_path"] is not None:
        out["import_map_path"] = row["import_map_path"]
    return out


# ------------------------------------------------------------------ secrets


async def set_secrets(conn: asyncpg.Connection, sealed: list[tuple[str, str, str]]) -> None:
    """(name, sealed value, digest) rows, inserted or replaced."""
    async with conn.transaction():
        await conn.executemany(
            """insert into _supalite.function_secrets (name, value, digest) values ($1, $2, $3)
               on conflict (name) do update set value = excluded.value,
                 digest = excluded.digest, updated_at = now()""",
            sealed,
        )
        await conn.execute(_NOTIFY, "")


async def unset_secrets(conn: asyncpg.Connection, names: list[str]) -> list[str]:
    async with conn.transaction():
        rows = await conn.fetch(
            "delete from _supalite.function_secrets where name = any($1::text[]) returning name",
            names,
        )
        if rows:
            await conn.execute(_NOTIFY, "")
    return sorted(r["name"] for r in rows)


async def list_secrets(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """Names and digests: the values never leave the database through here."""
    rows = await conn.fetch(
        "select name, digest, updated_at from _supalite.function_secrets order by name"
    )
    return [
        {"name": r["name"], "value": r["digest"], "updated_at": r["updated_at"].isoformat()}
        for r in rows
    ]


async def sealed_secrets(conn: asyncpg.Connection) -> list[tuple[str, str]]:
    """(name, sealed value): for building workers' environments only."""
    rows = await conn.fetch("select name, value from _supalite.function_secrets order by name")
    return [(r["name"], r["value"]) for r in rows]
