"""`supalite functions serve`, as the running server sees it: a session file in the data folder
(`<data>/functions/serve.json`, written by the command, removed when it ends) saying which local
functions to serve from their folders, with which dotenv file, and whether to skip the JWT
check.  While it holds, those functions win over deployed ones (the developer is editing them),
and any change to their files gives fresh workers at the next call.

Cheap on the call path: one stat of the session file per call (re-read only when it changed),
the command's process checked alive at most once a second, and for a served function one stat
per source file; the folders are listed again at most once a second (or when a listed file
went away), so a new file is seen within a second and an edited one at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from supalite.functions.registry import FunctionSpec, shared_folders, source_files
from supalite.server import _pid_alive as pid_alive

_RELIST = 1.0  # seconds between listings of a served function's folders
_ALIVE_CHECK = 1.0  # seconds between checks that the serving command still runs


def session_path(data_dir: Path) -> Path:
    return data_dir / "functions" / "serve.json"


@dataclass(frozen=True)
class Session:
    pid: int  # the `functions serve` process: the session ends with it
    names: tuple[str, ...]  # empty: every local function
    env_file: Path | None
    no_verify_jwt: bool

    def covers(self, name: str) -> bool:
        return not self.names or name in self.names

    def to_json(self) -> str:
        return json.dumps({
            "pid": self.pid, "names": list(self.names), "no_verify_jwt": self.no_verify_jwt,
            "env_file": str(self.env_file) if self.env_file is not None else None,
        })  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> Session | None:
        try:
            data: Any = json.loads(text)
            names, env_file = data["names"], data["env_file"]
            if not all(isinstance(n, str) for n in names):
                return None
            return cls(
                int(data["pid"]),
                tuple(names),
                Path(env_file) if isinstance(env_file, str) else None,
                bool(data["no_verify_jwt"]),
            )
        except (ValueError, KeyError, TypeError):
            return None


def read_session(path: Path) -> Session | None:
    """The session in force: None without one, or when its command is gone."""
    try:
        session = Session.from_json(path.read_text(encoding="utf-8"))
    except OSError:
        return None
    return session if session is not None and pid_alive(session.pid) else None


def write_session(path: Path, session: Session) -> None:
    """Atomically: a server never reads half a session."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(session.to_json(), encoding="utf-8")
    os.replace(tmp, path)


def end_session(path: Path, pid: int) -> None:
    """Remove the session if it is still `pid`'s."""
    try:
        session = Session.from_json(path.read_text(encoding="utf-8"))
    except OSError:
        return
    if session is None or session.pid == pid:
        with contextlib.suppress(OSError):
            path.unlink()


class Serving:
    """The server's side: whether a session holds, and the fingerprints of served functions."""

    def __init__(self, path: Path, functions_dir: Path) -> None:
        self.path = path
        self.functions_dir = functions_dir
        self._stamp: tuple[int, int, int] | None = None
        self._session: Session | None = None
        self._alive_at = 0.0
        self._listed: dict[Path, tuple[float, list[Path]]] = {}

    def session(self) -> Session | None:
        try:
            st = os.stat(self.path)
        except OSError:
            self._stamp = self._session = None
            return None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        now = time.monotonic()
        if stamp != self._stamp:
            self._stamp, self._alive_at = stamp, now
            self._session = read_session(self.path)
        elif self._session is not None and now - self._alive_at > _ALIVE_CHECK:
            self._alive_at = now
            if not pid_alive(self._session.pid):
                self._session = None  # killed without cleaning up: the session is over
        return self._session

    def serve(self, spec: FunctionSpec, session: Session) -> FunctionSpec:
        """`spec` (a local folder's) as served: the session's settings and a fingerprint of
        its files, the shared folders' and the env file."""
        env_file = session.env_file or self.functions_dir / ".env"
        files = [*self._files(spec.directory), *self._files(self.functions_dir, shared=True)]
        files += [spec.entrypoint, env_file]
        h = hashlib.sha256()
        stale = False
        for f in files:
            try:
                st = os.stat(f)
                stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
                h.update(b"%s\0%d\0%d\0%d\n" % (os.fsencode(f), *stamp))
            except OSError:
                h.update(b"%s\0-\n" % os.fsencode(f))
                stale = stale or f != env_file
        if stale:  # a listed file went away: list again next time
            self._listed.clear()
        return replace(
            spec,
            verify_jwt=spec.verify_jwt and not session.no_verify_jwt,
            env_file=env_file,
            rev=h.hexdigest()[:16],
        )

    def _files(self, folder: Path, *, shared: bool = False) -> list[Path]:
        now = time.monotonic()
        listed = self._listed.get(folder)
        if listed is None or now - listed[0] > _RELIST:
            roots = shared_folders(folder) if shared else [folder]
            listed = (now, [f for root in roots for f in source_files(root)])
            self._listed[folder] = listed
        return listed[1]
