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
from typing import Any

from supalite.mcp.backend import Backend, BackendConfig
from supalite.mcp.tools import Options


def _positive(value: str) -> int:
    if not value.isascii() or not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return int(value)


def _list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [p.strip() for p in value.split(",") if p.strip()]


def _config(args: argparse.Namespace) -> BackendConfig:
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
        )
    from_env = BackendConfig.from_env(env)
    if from_env is not None:
        if args.db_url:
            from dataclasses import replace

            from_env = replace(from_env, database_url=args.db_url)
        return from_env
    from supalite.config import load_settings
    from supalite.runtime import build_runtime
    from supalite.server import running_state

    settings = load_settings(args.workdir, config_file=args.config)
    state = running_state(settings)
    if state is None:
        raise SystemExit(
            f"supalite mcp: no supalite is running for {settings.project_dir} — run "
            "`supalite start`, or set SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY"
        )
    keys = build_runtime(settings).keys
    return BackendConfig(
        url=str(state["api_url"]),
        service_key=keys.service_role_key,
        anon_key=keys.anon_key,
        publishable_key=keys.publishable_key,
    )


def cmd_mcp(args: argparse.Namespace) -> int:
    from supalite.mcp.server import SelectionError, run_stdio, select_tools

    try:
        specs = select_tools(args.read_only, _list(args.features), _list(args.tools))
    except SelectionError as e:
        print(f"supalite mcp: {e}", file=sys.stderr)
        return 2
    config = _config(args)
    options = Options(
        read_only=args.read_only,
        max_rows=args.max_rows,
        max_bytes=args.max_bytes,
        allow_host_access=args.allow_host_access,
    )
    asyncio.run(run_stdio(Backend(config), options, specs))
    return 0


def add_command(sub: Any, common: argparse.ArgumentParser) -> None:
    s = sub.add_parser("mcp", parents=[common], help="run the MCP server on stdio")
    s.add_argument(
        "--read-only", action="store_true", help="no write tools; all SQL in read-only transactions"
    )
    s.add_argument(
        "--features", default=None, help="tool groups, comma-separated: data,database,development"
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
