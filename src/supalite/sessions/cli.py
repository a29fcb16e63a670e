"""`supalite sessions …`: the session store's commands, registered by supalite's CLI."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from supalite.sessions import errors
from supalite.sessions.crypto import KEY_ENV, PREVIOUS_KEY_ENV


def cmd_init(args: argparse.Namespace) -> int:
    from supalite.sessions.install import install

    project = Path(args.workdir or Path.cwd()).resolve()
    report = install(project)
    for p in report.copied:
        print(f"Copied {p.relative_to(project)}")
    for p in report.unchanged:
        print(f"Already present (same content): {p.relative_to(project)}")
    for p in report.conflicts:
        print(
            f"supalite: {p.relative_to(project)} exists with different content; left as it is."
            " Compare it with the shipped file (schema changes ship as new migration files):"
            f" {Path(__file__).parent / 'migrations' / p.name}",
            file=sys.stderr,
        )
    if report.conflicts:
        return 1
    print(
        "Next: `supalite db push` (or `supabase db push`), then set SUPABASE_URL and"
        f" SUPABASE_SERVICE_ROLE_KEY (or SUPABASE_SECRET_KEY), and {KEY_ENV}."
    )
    return 0


def cmd_rotate_key(args: argparse.Namespace) -> int:
    """Re-encrypt every stored secret with STORAGE_ENCRYPTION_KEY, reading old values with
    STORAGE_ENCRYPTION_KEY_PREVIOUS; the backend is the one the environment selects."""
    from supalite.sessions.selection import open_store

    async def run() -> int:
        store = await open_store()
        try:
            if not store.cipher.enabled:
                raise errors.SessionStoreError(
                    errors.BAD_KEY, f"{KEY_ENV} (the new key) must be set to rotate"
                )
            return await store.reencrypt()
        finally:
            await store.close()

    try:
        count = asyncio.run(run())
    except (errors.SessionStoreError, NotImplementedError) as e:
        print(f"supalite: {e}", file=sys.stderr)
        return 1
    print(
        f"Re-encrypted {count} value{'s' if count != 1 else ''} with {KEY_ENV};"
        f" {PREVIOUS_KEY_ENV} can now be removed."
    )
    return 0


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    ses = sub.add_parser("sessions", parents=[common], help="MCP session store commands")
    ssub = ses.add_subparsers(dest="sessions_command", required=True, metavar="COMMAND")
    s = ssub.add_parser(
        "init", parents=[common], help="copy the session tables' migrations into supabase/"
    )
    s.set_defaults(func=cmd_init)
    s = ssub.add_parser(
        "rotate-key", parents=[common], help=f"re-encrypt stored secrets with {KEY_ENV}"
    )
    s.set_defaults(func=cmd_rotate_key)
