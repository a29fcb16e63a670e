"""`supalite gen types [--lang typescript|python] [--schema S ...] [--db-url URL]`.

As `supabase gen types`: the types go to stdout, the schemas default to `public` plus the API's
exposed schemas (`[api] schemas` in config.toml, even with `--db-url`), and the database is the
project folder's own (started for the command when it is not running, as `db dump` does) unless
`--db-url` names one.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import asyncpg

from supalite.typegen import LANGUAGES, TypegenError, generate


async def _generate(db_url: str, lang: str, schemas: list[str], strict: bool) -> str:
    try:
        conn = await asyncpg.connect(db_url, timeout=30, statement_cache_size=0)
    except (OSError, asyncpg.PostgresError, TimeoutError, ValueError) as e:
        raise TypegenError(f"cannot connect to the database: {e}") from e
    try:
        async with conn.transaction(readonly=True):

            async def fetch(sql: str, params: list[Any]) -> list[dict[str, Any]]:
                return [dict(r) for r in await conn.fetch(sql, *params)]

            return await generate(lang, fetch, schemas, strict=strict)
    except asyncpg.PostgresError as e:
        raise TypegenError(f"cannot read the catalog: {e}") from e
    finally:
        await conn.close()


def cmd_gen_types(args: argparse.Namespace) -> int:
    # Not CliError: under `python -m supalite.cli` this module would import a second
    # supalite.cli whose CliError the running main() does not catch.
    from supalite.cli import _fail, _settings

    named = [s.strip() for v in args.schema or [] for s in v.split(",") if s.strip()]
    settings = _settings(args)
    # Named schemas must exist; the defaults (graphql_public may not) are taken as found.
    schemas, strict = (named, True) if named else (["public", *settings.api.schemas], False)
    try:
        if args.db_url:
            out = asyncio.run(_generate(args.db_url, args.lang, schemas, strict))
        else:
            from supalite.server import database

            with database(settings, out=lambda _: None) as runtime:
                out = asyncio.run(_generate(runtime.admin_url, args.lang, schemas, strict))
    except TypegenError as e:
        return _fail(str(e))
    sys.stdout.write(out)
    return 0


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    gen = sub.add_parser("gen", parents=[common], help="generate code from the database")
    gsub = gen.add_subparsers(dest="gen_command", required=True, metavar="COMMAND")
    s = gsub.add_parser("types", parents=[common], help="types of the database's schemas")
    s.add_argument("--lang", choices=LANGUAGES, default="typescript",
                   help="typescript (the Database type, default) or python (pydantic)")  # fmt: skip
    s.add_argument("-s", "--schema", action="append", default=None,
                   help="only this schema (repeatable, or comma-separated); default: public and "
                   "the API's schemas")  # fmt: skip
    s.add_argument("--db-url", default=None, help="read this database instead of the project's")
    s.set_defaults(func=cmd_gen_types)
