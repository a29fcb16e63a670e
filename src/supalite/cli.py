"""`supalite`: the command line.  Habits of the Supabase CLI carry over."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from supalite.config import ConfigError, Settings, load_settings

_CONFIG_TEMPLATE = """\
# supalite reads the Supabase CLI's config.toml; keys it does not use yet are accepted.
# Environment variables override these values; see docs/configuration.md.
project_id = "{project_id}"

[api]
# Port of the API (REST, Auth, Storage, Realtime, Functions on one port).
port = 54321
# Schemas exposed by the Data API.
schemas = ["public", "graphql_public"]
# Extra schemas on the search_path of every request.
extra_search_path = ["public", "extensions"]
# Maximum rows returned by one read.
max_rows = 1000

[db]
# Port of the embedded PostgreSQL (ignored when DATABASE_URL is set).
port = 54322
major_version = 15

[db.seed]
enabled = true
sql_paths = ["./seed.sql"]

[realtime]
enabled = true

[storage]
enabled = true
file_size_limit = "50MiB"

[auth]
enabled = true
site_url = "http://127.0.0.1:3000"
additional_redirect_urls = ["https://127.0.0.1:3000"]
jwt_expiry = 3600
enable_refresh_token_rotation = true
refresh_token_reuse_interval = 10
enable_signup = true
enable_anonymous_sign_ins = false
minimum_password_length = 6

[auth.email]
enable_signup = true
double_confirm_changes = true
enable_confirmations = false
max_frequency = "1s"
otp_length = 6
otp_expiry = 3600
"""

_SUPABASE_GITIGNORE = "# supalite\n.supalite/\n.branches\n.temp\n.env\n"


class CliError(Exception):
    pass


def _fail(message: str) -> int:
    print(f"supalite: {message}", file=sys.stderr)
    return 1


def _settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    return load_settings(args.workdir, config_file=args.config, overrides=overrides)


# ------------------------------------------------------------------ commands


def cmd_init(args: argparse.Namespace) -> int:
    project = Path(args.workdir or Path.cwd()).resolve()
    sb = project / "supabase"
    config = sb / "config.toml"
    if config.exists() and not args.force:
        return _fail(f"{config} already exists (use --force to overwrite)")
    (sb / "migrations").mkdir(parents=True, exist_ok=True)
    (sb / "functions").mkdir(parents=True, exist_ok=True)
    config.write_text(_CONFIG_TEMPLATE.format(project_id=project.name or "supalite"))
    seed = sb / "seed.sql"
    if not seed.exists():
        seed.write_text("-- Rows to load after migrations on `supalite db reset`.\n")
    gitignore = sb / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text(_SUPABASE_GITIGNORE)
    print(f"Finished supalite init in {sb}.")
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    from supalite.server import Launch, start

    overrides = {"api.port": args.port, "api.workers": args.workers, "api.host": args.host}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    settings = _settings(args, **overrides)
    launch = Launch(str(settings.project_dir), args.config, overrides)
    start(settings, launch)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from supalite.runtime import build_runtime
    from supalite.server import banner, env_lines, running_state

    settings = _settings(args)
    state = running_state(settings)
    if state is None:
        return _fail(f"supalite is not running for {settings.project_dir} (run `supalite start`)")
    runtime = build_runtime(settings)
    if args.output == "env":
        for k, v in env_lines(runtime, state):
            print(f'{k}="{v}"')
    elif args.output == "json":
        print(json.dumps(dict(env_lines(runtime, state)), indent=2))
    else:
        print(f"supalite is running (pid {state['pid']}).")
        rows = banner(runtime, state)
        width = max(len(k) for k, _ in rows)
        for k, v in rows:
            print(f"{k.rjust(width)}: {v}")
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    from supalite.logs import log_path, read_log

    settings = _settings(args)
    entries = read_log(
        log_path(settings.data_dir), service=args.service, limit=args.lines, function=args.function
    )
    for entry in entries:
        print(json.dumps(entry, separators=(",", ":")))
    return 0


def cmd_migration_new(args: argparse.Namespace) -> int:
    from supalite.db.migrations import new_migration

    settings = _settings(args)
    path = new_migration(settings.supabase_dir, args.name)
    print(f"Created new migration at {path.relative_to(settings.project_dir)}")
    return 0


def cmd_migration_list(args: argparse.Namespace) -> int:
    import asyncpg

    from supalite.db.migrations import applied_versions, local_migrations
    from supalite.server import database

    settings = _settings(args)
    with database(settings, out=lambda _: None) as runtime:

        async def fetch() -> set[str]:
            conn = await asyncpg.connect(runtime.admin_url)
            try:
                return await applied_versions(conn)
            finally:
                await conn.close()

        applied = asyncio.run(fetch())
    local = {m.version: m for m in local_migrations(settings.supabase_dir)}
    print(f"{'LOCAL':<16} {'REMOTE':<16} NAME")
    for v in sorted(set(local) | applied, key=int):
        name = local[v].name if v in local else ""
        print(f"{v if v in local else '':<16} {v if v in applied else '':<16} {name}")
    return 0


def cmd_db_push(args: argparse.Namespace) -> int:
    from supalite.server import database, migrate_and_seed

    settings = _settings(args)
    with database(settings) as runtime:
        asyncio.run(migrate_and_seed(runtime, print, seed=args.include_seed))
    print("Finished supalite db push.")
    return 0


def cmd_db_reset(args: argparse.Namespace) -> int:
    from supalite.db.reset import reset_database
    from supalite.server import database, migrate_and_seed, prepare_database

    settings = _settings(args)
    with database(settings) as runtime:
        print("Resetting the database...")
        asyncio.run(reset_database(runtime))
        asyncio.run(prepare_database(runtime, print, fresh=False))
        asyncio.run(migrate_and_seed(runtime, print, seed=settings.db.seed_enabled))
    print("Finished supalite db reset.")
    return 0


def cmd_db_dump(args: argparse.Namespace) -> int:
    from supalite.db.dump import dump_command
    from supalite.server import database

    settings = _settings(args)
    with database(settings, out=lambda _: None) as runtime:
        cmd, env = dump_command(runtime, data_only=args.data_only, schemas=args.schema)
        out = open(args.file, "wb") if args.file else None  # noqa: SIM115
        try:
            proc = subprocess.run(cmd, env=env, stdout=out or sys.stdout.buffer,
                                  stderr=subprocess.PIPE)  # fmt: skip
        finally:
            if out:
                out.close()
    if proc.returncode != 0:
        return _fail(f"pg_dump failed: {proc.stderr.decode(errors='replace').strip()}")
    if args.file:
        print(f"Dumped schema to {args.file}.", file=sys.stderr)
    return 0


def cmd_mail(args: argparse.Namespace) -> int:
    """The built-in mail catcher's inbox: Auth's emails when no SMTP server is configured."""
    import asyncpg

    from supalite.auth import mail
    from supalite.server import database

    settings = _settings(args)
    with database(settings, out=lambda _: None) as runtime:

        async def run() -> list[mail.StoredMessage] | int:
            conn = await asyncpg.connect(runtime.admin_url)
            try:
                if args.clear:
                    return await mail.clear_messages(conn, to=args.to)
                return await mail.list_messages(conn, to=args.to, limit=args.limit)
            finally:
                await conn.close()

        result = asyncio.run(run())
    if isinstance(result, int):
        print(f"Deleted {result} message{'s' if result != 1 else ''}.")
    elif args.json:
        print(json.dumps([m.as_json() for m in result], indent=2))
    elif not result:
        print("No messages.")
    else:
        for m in result:
            when = m.created_at.strftime("%Y-%m-%d %H:%M:%S")
            print(f"#{m.id}  {when}  {m.to}  [{m.kind}]  {m.subject}")
            for line in m.text.splitlines():
                print(f"    {line}" if line else "")
            print()
    return 0


def _positive_int(value: str) -> int:
    if not value.isascii() or not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return int(value)


# ------------------------------------------------------------------ parser


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--workdir",
        "--project-dir",
        dest="workdir",
        default=None,
        help="project folder (holds supabase/); default: current folder",
    )
    common.add_argument(
        "--config",
        default=None,
        help="a JSON (or TOML) config file, on top of supabase/config.toml",
    )

    p = argparse.ArgumentParser(prog="supalite", description=__doc__, parents=[common])
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("init", parents=[common], help="create supabase/config.toml and folders")
    s.add_argument("--force", action="store_true", help="overwrite an existing config.toml")
    s.set_defaults(func=cmd_init)

    s = sub.add_parser("start", parents=[common], help="start the database and the API")
    s.add_argument("--port", type=int, default=None, help="API port (default 54321)")
    s.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    s.add_argument("--workers", type=int, default=None, help="API worker processes (default 1)")
    s.set_defaults(func=cmd_start)

    s = sub.add_parser("status", parents=[common], help="show URLs and keys of the running server")
    s.add_argument("-o", "--output", choices=["pretty", "env", "json"], default="pretty")
    s.set_defaults(func=cmd_status)

    s = sub.add_parser("logs", parents=[common], help="print the structured request log")
    s.add_argument(
        "--service",
        default=None,
        help="only this service (rest, auth, storage, realtime, functions, ...)",
    )
    s.add_argument("-n", "--lines", type=int, default=None, help="only the last N entries")
    s.add_argument("--function", default=None, help="only this function's calls and output")
    s.set_defaults(func=cmd_logs)

    s = sub.add_parser("mail", parents=[common], help="read the built-in mail catcher's inbox")
    s.add_argument("--to", default=None, help="only messages sent to this address")
    s.add_argument("--limit", type=_positive_int, default=20, help="newest N (default 20)")
    s.add_argument("--json", action="store_true", help="print JSON, bodies included")
    s.add_argument("--clear", action="store_true", help="delete the messages (or --to's)")
    s.set_defaults(func=cmd_mail)

    mig = sub.add_parser("migration", parents=[common], help="manage migration files")
    msub = mig.add_subparsers(dest="migration_command", required=True, metavar="COMMAND")
    s = msub.add_parser("new", parents=[common], help="create supabase/migrations/<ts>_<name>.sql")
    s.add_argument("name")
    s.set_defaults(func=cmd_migration_new)
    s = msub.add_parser("list", parents=[common], help="local and applied migrations")
    s.set_defaults(func=cmd_migration_list)

    db = sub.add_parser("db", parents=[common], help="database commands")
    dsub = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    s = dsub.add_parser("push", parents=[common], help="apply pending migrations")
    s.add_argument("--include-seed", action="store_true", help="also run the seed files")
    s.set_defaults(func=cmd_db_push)
    s = dsub.add_parser("reset", parents=[common], help="recreate the database, migrate, seed")
    s.set_defaults(func=cmd_db_reset)
    s = dsub.add_parser("dump", parents=[common], help="dump the schema (or data) as SQL")
    s.add_argument("-f", "--file", default=None, help="write to this file instead of stdout")
    s.add_argument("--data-only", action="store_true", help="dump rows instead of the schema")
    s.add_argument(
        "-s",
        "--schema",
        action="append",
        default=None,
        help="only this schema (repeatable); default: every user schema",
    )
    s.set_defaults(func=cmd_db_dump)

    from supalite.functions.cli import add_commands as add_functions_commands

    add_functions_commands(sub, common)

    from supalite.sessions.cli import add_commands as add_sessions_commands

    add_sessions_commands(sub, common)

    from supalite.mcp.cli import add_command as add_mcp_command

    add_mcp_command(sub, common)

    from supalite.typegen.cli import add_commands as add_gen_commands

    add_gen_commands(sub, common)
    return p  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    from supalite.db.migrations import MigrationError
    from supalite.server import StartupError

    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except (ConfigError, StartupError, MigrationError, CliError) as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
