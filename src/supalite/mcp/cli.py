"""`supalite mcp`: the MCP server on stdio, for an agent that starts it as a subprocess.

Which project: `--url` and keys, else `SUPABASE_URL` + `SUPABASE_SERVICE_ROLE_KEY` (+
`SUPABASE_ANON_KEY`, `DATABASE_URL`) from the environment — as for any Supabase project — else
the supalite running for the project folder.  Nothing but the protocol goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any, NamedTuple

from supalite.mcp.backend import Backend, BackendConfig
from supalite.mcp.tools import GROUPS, Options, ToolSpec
from supalite.sessions.errors import SessionStoreError


class LocalStore(NamedTuple):
    """A local supalite's own MCP session store: its database and its JWT secret."""

    db_url: str
    jwt_secret: str


def _positive(value: str) -> int:
    if not value.isascii() or not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return int(value)


def _list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [p.strip() for p in value.split(",") if p.strip()]


def _config(args: argparse.Namespace) -> tuple[BackendConfig, LocalStore | None]:
    """The project, and where its own session store is when it is the local supalite of the
    project folder."""
    env = os.environ
    if args.url:
        key = (
            args.service_key
            or env.get("SUPABASE_SERVICE_ROLE_KEY")
            or env.get("SUPABASE_SECRET_KEY")
        )
        if not key:
            raise SystemExit(
                "supalite mcp: --url needs --service-key (or SUPABASE_SERVICE_ROLE_KEY)"
            )
        return BackendConfig(
            url=args.url.rstrip("/"),
            service_key=key,
            anon_key=args.anon_key or env.get("SUPABASE_ANON_KEY") or None,
            publishable_key=env.get("SUPABASE_PUBLISHABLE_KEY") or None,
            database_url=args.db_url or env.get("DATABASE_URL") or None,
        ), None
    from_env = BackendConfig.from_env(env)
    if from_env is not None:
        if args.db_url:
            from dataclasses import replace

            from_env = replace(from_env, database_url=args.db_url)
        return from_env, None
    from supalite.config import load_settings
    from supalite.runtime import build_runtime
    from supalite.server import running_state

    settings = load_settings(args.workdir, config_file=args.config)
    if args.config and settings.api.public_url and settings.auth.service_role_key:
        # A config file naming a project (the JSON shape Supabase MCP servers read: `url`
        # and `keys`): that project, reached only by URL and keys.
        return BackendConfig(
            url=settings.api.public_url.rstrip("/"),
            service_key=settings.auth.service_role_key,
            anon_key=settings.auth.anon_key,
            database_url=args.db_url or settings.db.url,
        ), None
    state = running_state(settings)
    if state is None:
        raise SystemExit(
            f"supalite mcp: no supalite is running for {settings.project_dir} — run "
            "`supalite start`, or set SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY"
        )
    keys = build_runtime(settings).keys
    config = BackendConfig(
        url=str(state["api_url"]),
        service_key=keys.service_role_key,
        anon_key=keys.anon_key,
        publishable_key=keys.publishable_key,
    )
    # The database URL the server wrote down (its port may come from an environment this
    # process does not share, as when an MCP client starts it).
    return config, LocalStore(str(state["db_url"]), keys.jwt_secret)


def cmd_mcp(args: argparse.Namespace) -> int:
    from supalite.mcp.server import SelectionError, select_tools

    try:
        specs = select_tools(args.read_only, _list(args.features), _list(args.tools))
    except SelectionError as e:
        print(f"supalite mcp: {e}", file=sys.stderr)
        return 2
    config, local = _config(args)
    options = Options(
        read_only=args.read_only,
        max_rows=args.max_rows,
        max_bytes=args.max_bytes,
        allow_host_access=args.allow_host_access,
    )
    asyncio.run(_serve(Backend(config), options, specs, local))
    return 0


async def _serve(
    backend: Backend, options: Options, specs: list[ToolSpec], local: LocalStore | None
) -> None:
    from supalite.mcp.identity import Identities, open_stdio_store
    from supalite.mcp.server import run_stdio

    try:
        store = await open_stdio_store(local)
    except SessionStoreError as e:
        raise SystemExit(f"supalite mcp: {e.message}") from e
    await run_stdio(backend, options, specs, Identities(backend, store, sole_reader=True))


def add_command(sub: Any, common: argparse.ArgumentParser) -> None:
    s = sub.add_parser("mcp", parents=[common], help="run the MCP server on stdio")
    s.add_argument(
        "--read-only", action="store_true", help="no write tools; all SQL in read-only transactions"
    )
    s.add_argument(
        "--features", default=None, help="tool groups, comma-separated: " + ",".join(GROUPS)
    )
    s.add_argument("--tools", default=None, help="only these tools, comma-separated")
    s.add_argument("--url", default=None, help="project API URL (default: SUPABASE_URL)")
    s.add_argument("--service-key", default=None, help="service_role or secret key")
    s.add_argument("--anon-key", default=None, help="anon or publishable key")
    s.add_argument("--db-url", default=None, help="database URL for admin SQL (DATABASE_URL)")
    s.add_argument("--max-rows", type=_positive, default=100, help="rows per answer (default 100)")
    s.add_argument(
        "--max-bytes",
        type=_positive,
        default=64 * 1024,
        help="bytes of row data per answer (default 65536)",
    )
    s.add_argument(
        "--allow-host-access",
        action="store_true",
        help="allow pg_read_file, COPY … PROGRAM, lo_import, dblink in execute_sql",
    )
    s.set_defaults(func=cmd_mcp)
