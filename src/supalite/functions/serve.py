"""`supalite functions serve [NAME…] [--env-file F] [--no-verify-jwt]`.

As `supabase functions serve` serves on the stack `supabase start` runs, this serves on the
running `supalite start`: no second server, the same URL (`/functions/v1/<name>`), the same
database, auth and keys the app already uses.  It writes a session file the server reads on
each call (serving.py): while the command runs, the local folders win over deployed versions,
any edited file of a function (its folder, a shared `_*` folder, the env file) gives fresh
workers at the next call, and the command prints each call and what the function logs, read
from the request log.  Ctrl-C ends the session: deployed versions are served again.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import IO, Any

from supalite.functions.registry import Registry
from supalite.functions.serving import (
    Session,
    end_session,
    read_session,
    session_path,
    write_session,
)

_POLL = 0.2  # seconds between looks at the request log


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def cmd_serve(args: argparse.Namespace) -> int:
    from supalite.cli import CliError, _settings
    from supalite.logs import log_path
    from supalite.server import running_state

    settings = _settings(args)
    state = running_state(settings)
    if state is None:
        raise CliError(
            f"no supalite is running for {settings.project_dir}: run `supalite start` first "
            "(functions serve serves on it, as `supabase functions serve` does on `supabase start`)"
        )
    registry = Registry(settings.supabase_dir, settings.functions.per_function)
    names: list[str] = list(dict.fromkeys(args.names))
    for name in names:
        if registry.get(name) is None:
            raise CliError(f"no function {name!r} in {registry.functions_dir}")
    env_file = None
    if args.env_file:
        env_file = Path(args.env_file).resolve()
        if not env_file.is_file():
            raise CliError(f"{args.env_file}: no such file")
    path = session_path(settings.data_dir)
    other = read_session(path)
    if other is not None and other.pid != os.getpid():
        raise CliError(
            f"`supalite functions serve` already runs for this project (pid {other.pid})"
        )
    session = Session(os.getpid(), tuple(names), env_file, bool(args.no_verify_jwt))
    log = log_path(settings.data_dir)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.touch(exist_ok=True)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        with open(log, "rb") as f:
            f.seek(0, os.SEEK_END)  # only what happens from now on
            write_session(path, session)
            _banner(str(state["api_url"]), registry, names, session)
            _follow(log, f, set(names))
    except KeyboardInterrupt:
        pass
    finally:
        end_session(path, os.getpid())
        signal.signal(signal.SIGTERM, previous)
    print("Stopped serving local functions: deployed versions are served again.", flush=True)
    return 0


def _banner(api_url: str, registry: Registry, names: list[str], session: Session) -> None:
    served = names or registry.names()
    print(f"Serving functions on {api_url}/functions/v1/<function-name>", flush=True)
    for name in served:
        spec = registry.get(name)
        if spec is not None:
            jwt = "no JWT check" if session.no_verify_jwt or not spec.verify_jwt else "verify_jwt"
            print(f" - {api_url}/functions/v1/{name} ({spec.lang}, {jwt})")
    env = session.env_file or registry.functions_dir / ".env"
    print(f"Environment: {env}" + ("" if env.is_file() else " (none)"))
    print("Edits are served at the next call. Ctrl-C to stop.", flush=True)


def _follow(path: Path, f: IO[bytes], names: set[str]) -> None:
    """Print the functions' entries of the request log as they are appended (a rotated log
    is reopened from its start)."""
    inode = os.fstat(f.fileno()).st_ino
    pending = b""
    while True:
        chunk = f.readline()
        if chunk:
            pending += chunk
            if pending.endswith(b"\n"):  # else a line still being written: the rest follows
                _show(pending.decode("utf-8", "replace"), names)
                pending = b""
            continue
        time.sleep(_POLL)
        try:
            if os.stat(path).st_ino != inode:
                f.close()
                f = open(path, "rb")  # noqa: SIM115 - replaced when the log rotates again
                inode, pending = os.fstat(f.fileno()).st_ino, b""
        except OSError:
            continue


def _show(line: str, names: set[str]) -> None:
    try:
        entry = json.loads(line)
    except ValueError:
        return
    if not isinstance(entry, dict) or entry.get("service") != "functions":
        return
    name = entry.get("function")
    if not isinstance(name, str) or (names and name not in names):
        return
    eid = str(entry.get("execution_id") or "-")[:8]
    if "message" in entry:
        level = entry.get("level", "log")
        stream = sys.stderr if level in ("error", "warn") else sys.stdout
        for text in str(entry["message"]).splitlines() or [""]:
            print(f"[{name} {eid}] {level}: {text}", file=stream, flush=True)
    else:
        print(
            f"[{name} {eid}] {entry.get('method')} {entry.get('path')} -> {entry.get('status')}"
            f" ({entry.get('duration_ms')} ms)",
            flush=True,
        )
