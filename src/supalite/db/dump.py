"""`supalite db dump`: pg_dump of the user's schemas (not the ones supalite manages)."""

from __future__ import annotations

import os
from urllib.parse import parse_qs, urlsplit

from supalite.db.embedded import find_binaries
from supalite.runtime import Runtime

MANAGED_SCHEMAS = (
    "auth", "storage", "realtime", "extensions", "graphql", "graphql_public",
    "supabase_migrations", "_supalite", "cron", "vault", "pgsodium", "net",
)  # fmt: skip


def dump_command(
    runtime: Runtime, *, data_only: bool = False, schemas: list[str] | None = None
) -> tuple[list[str], dict[str, str]]:
    """The pg_dump argv and environment (connection details in PG* variables, not argv)."""
    binaries = runtime.pg.binaries if runtime.pg else find_binaries()
    parts = urlsplit(runtime.admin_url)
    query = parse_qs(parts.query)
    env = dict(os.environ)
    env["PGHOST"] = query.get("host", [parts.hostname or "127.0.0.1"])[0]
    env["PGPORT"] = query.get("port", [str(parts.port or 5432)])[0]
    env["PGUSER"] = parts.username or "postgres"
    env["PGPASSWORD"] = parts.password or ""
    env["PGDATABASE"] = parts.path.lstrip("/") or "postgres"
    if "sslmode" in query:
        env["PGSSLMODE"] = query["sslmode"][0]
    cmd = [binaries.tool("pg_dump"), "--no-owner", "--no-privileges", "--quote-all-identifiers"]
    cmd.append("--data-only" if data_only else "--schema-only")
    if schemas:
        cmd += [f"--schema={s}" for s in schemas]
    else:
        cmd += [f"--exclude-schema={s}" for s in MANAGED_SCHEMAS]
    return cmd, env
