"""`supalite functions new NAME [--lang python|typescript]` and `supalite functions list`."""

from __future__ import annotations

import argparse
from typing import Any

from supalite.functions import templates
from supalite.functions.registry import SLUG, Registry


def cmd_new(args: argparse.Namespace) -> int:
    from supalite.cli import CliError, _settings

    settings = _settings(args)
    name: str = args.name
    if not SLUG.match(name):
        raise CliError(f"invalid function name {name!r}: letters, digits, - and _ only, "
                       "starting with a letter")  # fmt: skip
    folder = settings.supabase_dir / "functions" / name
    if folder.exists():
        raise CliError(f"{folder} already exists")
    folder.mkdir(parents=True)
    filename, template = (
        ("main.py", templates.PYTHON)
        if args.lang == "python"
        else ("index.ts", templates.TYPESCRIPT)
    )
    (folder / filename).write_text(template.format(name=name, url=settings.api_url))
    config = settings.supabase_dir / "config.toml"
    if config.exists() and f"[functions.{name}]" not in config.read_text():
        with config.open("a", encoding="utf-8") as f:
            f.write(templates.CONFIG.format(name=name))
    print(f"Created new Function at {(folder / filename).relative_to(settings.project_dir)}")
    if args.lang == "typescript":
        print("TypeScript functions run with Deno: `npm install deno` if it is not installed.")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from supalite.cli import _settings

    settings = _settings(args)
    registry = Registry(settings.supabase_dir, settings.functions.per_function)
    for name in registry.names():
        spec = registry.get(name)
        if spec is not None:
            jwt = "verify_jwt" if spec.verify_jwt else "no verify_jwt"
            print(
                f"{name}\t{spec.lang}\t{jwt}\t{spec.entrypoint.relative_to(settings.project_dir)}"
            )
    return 0


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    fn = sub.add_parser("functions", parents=[common], help="manage Functions")
    fsub = fn.add_subparsers(dest="functions_command", required=True, metavar="COMMAND")
    s = fsub.add_parser("new", parents=[common], help="create supabase/functions/<name>/")
    s.add_argument("name")
    s.add_argument("--lang", choices=["python", "typescript"], default="python",
                   help="main.py (default) or index.ts (Deno, as Edge Functions)")  # fmt: skip
    s.set_defaults(func=cmd_new)
    s = fsub.add_parser("list", parents=[common], help="the functions in supabase/functions/")
    s.set_defaults(func=cmd_list)
