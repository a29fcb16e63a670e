"""`supalite functions new | serve | list | deploy | delete` and `supalite secrets set | list |
unset` (`serve` is serve.py).

`deploy`, `delete` and `secrets` talk to a running supalite through its admin API
(`/admin/v1`, admin.py) with the service key: the one for this project folder (its running
server's URL, the key derived from its JWT secret), or `--url` + `--service-key` for another.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import httpx

from supalite.functions import templates
from supalite.functions.registry import (
    SLUG,
    Registry,
    read_env_file,
    shared_folders,
    source_files,
)


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


def _jwt(verify: bool) -> str:
    return "verify_jwt" if verify else "no verify_jwt"


def cmd_list(args: argparse.Namespace) -> int:
    """The local folder's functions and, when a server is running, the deployed ones (which
    are what it serves when a name is in both)."""
    from supalite.cli import CliError, _settings

    settings = _settings(args)
    registry = Registry(settings.supabase_dir, settings.functions.per_function)
    try:
        deployed = {f["slug"]: f for f in _admin(args, "GET", "/functions")}
    except CliError as e:
        deployed = {}
        print(f"(deployed functions not shown: {e})", file=sys.stderr)
    for name in registry.names():
        spec = registry.get(name)
        if spec is not None:
            where = str(spec.entrypoint.relative_to(settings.project_dir))
            if name in deployed:
                where += f" (not served: deployed v{deployed[name]['version']} is)"
            print(f"{name}\t{spec.lang}\t{_jwt(spec.verify_jwt)}\t{where}")
    for name, f in sorted(deployed.items()):
        if registry.get(name) is None:
            lang = "python" if f["entrypoint_path"].endswith(".py") else "typescript"
            print(f"{name}\t{lang}\t{_jwt(f['verify_jwt'])}\tdeployed v{f['version']}")
    return 0


# ------------------------------------------------------------------ the admin API


def _target(args: argparse.Namespace) -> tuple[str, str]:
    """(API URL, service key) of the server to talk to."""
    from supalite.cli import CliError, _settings

    if getattr(args, "url", None):
        env = os.environ
        key = (
            args.service_key
            or env.get("SUPABASE_SERVICE_ROLE_KEY")
            or env.get("SUPABASE_SECRET_KEY")
        )
        if not key:
            raise CliError("--url needs --service-key (or SUPABASE_SERVICE_ROLE_KEY)")
        return str(args.url).rstrip("/"), key
    from supalite.runtime import build_runtime
    from supalite.server import running_state

    settings = _settings(args)
    state = running_state(settings)
    if state is None:
        raise CliError(
            f"no supalite is running for {settings.project_dir}: run `supalite start` "
            "(or give --url and --service-key)"
        )
    return str(state["api_url"]), build_runtime(settings).keys.service_role_key


def _admin(args: argparse.Namespace, method: str, path: str, **kw: Any) -> Any:
    from supalite.cli import CliError

    url, key = _target(args)
    headers = {"apikey": key, "Authorization": f"Bearer {key}"}
    try:
        r = httpx.request(method, f"{url}/admin/v1{path}", headers=headers, timeout=120, **kw)
    except httpx.HTTPError as e:
        raise CliError(f"cannot reach {url}: {e}") from e
    try:
        data = r.json() if r.content else None
    except ValueError:
        data = None
    if r.status_code >= 400:
        message = data.get("message") if isinstance(data, dict) else None
        raise CliError(f"{message or r.text[:300]} (HTTP {r.status_code})")
    return data


def _folder_files(folder: Path, prefix: str) -> dict[str, str]:
    from supalite.cli import CliError

    out: dict[str, str] = {}
    for path in source_files(folder):
        try:
            out[prefix + path.relative_to(folder).as_posix()] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise CliError(f"{path}: only UTF-8 text files can be deployed ({e})") from e
    return out


def cmd_deploy(args: argparse.Namespace) -> int:
    """The local folder's function, with the shared `_*` folders beside it (Supabase's
    `../_shared/` convention), to the running server as a new version."""
    from supalite.cli import CliError, _settings

    settings = _settings(args)
    name: str = args.name
    spec = Registry(settings.supabase_dir, settings.functions.per_function).get(name)
    if spec is None:
        raise CliError(f"no function {name!r} in {settings.supabase_dir / 'functions'}")
    folder = settings.supabase_dir / "functions" / name
    files = _folder_files(folder, "")
    for shared in shared_folders(folder.parent):
        files.update(_folder_files(shared, f"../{shared.name}/"))
    entry = os.path.relpath(spec.entrypoint, folder.resolve()).replace(os.sep, "/")
    if entry not in files:
        files.update({entry: spec.entrypoint.read_text(encoding="utf-8")})
    body = {
        "name": name,
        "entrypoint_path": entry,
        "verify_jwt": spec.verify_jwt and not args.no_verify_jwt,
        "files": [{"name": k, "content": v} for k, v in files.items()],
    }
    out = _admin(args, "POST", "/functions/deploy", params={"slug": name}, json=body)
    print(f"Deployed Function {name} (version {out['version']}, {len(files)} files, "
          f"{_jwt(out['verify_jwt'])})")  # fmt: skip
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from supalite.cli import CliError

    if not SLUG.match(args.name):
        raise CliError(f"invalid function name {args.name!r}")
    _admin(args, "DELETE", f"/functions/{args.name}")
    print(f"Deleted Function {args.name} (a local folder of that name is served again)")
    return 0


def cmd_secrets_set(args: argparse.Namespace) -> int:
    from supalite.cli import CliError

    values: dict[str, str] = {}
    if args.env_file:
        path = Path(args.env_file)
        if not path.is_file():
            raise CliError(f"{path}: no such file")
        values.update(read_env_file(path))
    for pair in args.pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise CliError(f"expected NAME=VALUE, got {pair!r}")
        values[name] = value
    if not values:
        raise CliError("nothing to set: give NAME=VALUE pairs or --env-file")
    _admin(args, "POST", "/secrets", json=[{"name": k, "value": v} for k, v in values.items()])
    print(f"Finished supalite secrets set: {', '.join(sorted(values))}")
    return 0


def cmd_secrets_list(args: argparse.Namespace) -> int:
    rows = _admin(args, "GET", "/secrets")
    print("NAME\tDIGEST")
    for row in rows:
        print(f"{row['name']}\t{row['value']}")
    return 0


def cmd_secrets_unset(args: argparse.Namespace) -> int:
    out = _admin(args, "DELETE", "/secrets", json=list(args.names))
    removed = out["removed"]
    print(f"Finished supalite secrets unset: {', '.join(removed) if removed else 'none were set'}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from supalite.functions.serve import cmd_serve

    return cmd_serve(args)


def _remote(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=None, help="another server's API URL")
    parser.add_argument("--service-key", default=None, help="its service_role or secret key")


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    fn = sub.add_parser("functions", parents=[common], help="manage Functions")
    fsub = fn.add_subparsers(dest="functions_command", required=True, metavar="COMMAND")
    s = fsub.add_parser("new", parents=[common], help="create supabase/functions/<name>/")
    s.add_argument("name")
    s.add_argument("--lang", choices=["python", "typescript"], default="python",
                   help="main.py (default) or index.ts (Deno, as Edge Functions)")  # fmt: skip
    s.set_defaults(func=cmd_new)
    s = fsub.add_parser(
        "serve", parents=[common], help="serve local folders on the running server, hot reloaded"
    )
    s.add_argument("names", nargs="*", metavar="NAME", help="only these (default: all)")
    s.add_argument("--env-file", default=None, help="dotenv file (default supabase/functions/.env)")
    s.add_argument("--no-verify-jwt", action="store_true", help="serve them without a JWT check")
    s.set_defaults(func=_serve)
    s = fsub.add_parser("list", parents=[common], help="local and deployed functions")
    _remote(s)
    s.set_defaults(func=cmd_list)
    s = fsub.add_parser("deploy", parents=[common], help="store a function in the running server")
    s.add_argument("name")
    s.add_argument("--no-verify-jwt", action="store_true", help="serve it without a JWT check")
    _remote(s)
    s.set_defaults(func=cmd_deploy)
    s = fsub.add_parser("delete", parents=[common], help="remove a deployed function")
    s.add_argument("name")
    _remote(s)
    s.set_defaults(func=cmd_delete)

    # `supalite secrets`: the functions' environment, so it lives here too.
    sec = sub.add_parser("secrets", parents=[common], help="manage the Functions' secrets")
    ssub = sec.add_subparsers(dest="secrets_command", required=True, metavar="COMMAND")
    s = ssub.add_parser("set", parents=[common], help="set NAME=VALUE secrets (stored encrypted)")
    s.add_argument("pairs", nargs="*", metavar="NAME=VALUE")
    s.add_argument("--env-file", default=None, help="read NAME=VALUE lines from this file")
    _remote(s)
    s.set_defaults(func=cmd_secrets_set)
    s = ssub.add_parser("list", parents=[common], help="secret names and digests (no values)")
    _remote(s)
    s.set_defaults(func=cmd_secrets_list)
    s = ssub.add_parser("unset", parents=[common], help="remove secrets")
    s.add_argument("names", nargs="+", metavar="NAME")
    _remote(s)
    s.set_defaults(func=cmd_secrets_unset)
