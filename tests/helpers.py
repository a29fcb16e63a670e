"""Test helpers: free ports, a live `supalite start` subprocess, an external PostgreSQL."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def supalite(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would, in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "supalite.cli", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


_BANNER_KEYS = {
    "API URL",
    "DB URL",
    "Database",
    "JWT secret",
    "anon key",
    "service_role key",
    "Publishable key",
    "Secret key",
}


class LiveServer:
    """`supalite start` in a subprocess, read until it prints its banner."""

    def __init__(self, project: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.project = project
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        self.info: dict[str, str] = {}

    def start(self, timeout: float = 60) -> LiveServer:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "supalite.cli", "start", *self.args],
            cwd=self.project,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("supalite exited:\n" + "".join(self.output))
            self.output.append(line)
            key, sep, value = line.partition(": ")
            if sep and key.strip() in _BANNER_KEYS:
                self.info[key.strip()] = value.strip()
            if "Secret key" in self.info:
                return self
        raise RuntimeError("supalite did not become ready:\n" + "".join(self.output))

    @property
    def url(self) -> str:
        return self.info["API URL"]

    @property
    def anon_key(self) -> str:
        return self.info["anon key"]

    @property
    def service_key(self) -> str:
        return self.info["service_role key"]

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kw)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30) -> str:
        """Stop as Ctrl-C does; return the rest of its output."""
        if self.proc is None:
            return ""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rest, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rest, _ = self.proc.communicate()
        self.output.append(rest or "")
        return rest or ""

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _pg_bindir() -> Path:
    root = Path("/usr/lib/postgresql")
    versions = sorted((p for p in root.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    return versions[-1] / "bin"


class ExternalPostgres:
    """A server started with the system binaries, independent of supalite's embedded code;
    supalite only ever sees its URL (as it would a managed database)."""

    password = "ext-secret"

    def __init__(self, base: Path, port: int) -> None:
        self.base = base
        self.port = port
        self.pgdata = base / "data"
        self.bindir = _pg_bindir()
        self.account = pwd.getpwnam("postgres") if os.geteuid() == 0 else None

    def _run(self, *cmd: str) -> None:
        kw: dict[str, Any] = {}
        if self.account:
            kw = {"user": self.account.pw_uid, "group": self.account.pw_gid, "extra_groups": []}
        subprocess.run(cmd, check=True, capture_output=True, timeout=120, **kw)

    def start(self) -> None:
        self.base.chmod(0o777)
        for parent in self.base.parents:
            parent.chmod(parent.stat().st_mode | 0o001)
        pwfile = self.base / "pw"
        pwfile.write_text(self.password)
        pwfile.chmod(0o644)
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.pgdata),
            "-U",
            "postgres",
            "--pwfile",
            str(pwfile),
            "--auth=scram-sha-256",
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.pgdata),
            "-w",
            "-l",
            str(self.base / "log"),
            "-o",
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=",
            "start",
        )

    def restart(self) -> None:
        """pg_ctl restart (with a log file, so pg_ctl does not hand the server our pipes)."""
        pg_ctl = str(self.bindir / "pg_ctl")
        self._run(pg_ctl, "-D", str(self.pgdata), "-w", "-l", str(self.base / "log"), "restart")

    @property
    def url(self) -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "stop")
        shutil.rmtree(self.base, ignore_errors=True)


def status_json(project: Path) -> dict[str, str]:
    r = supalite("status", "-o", "json", cwd=project)
    assert r.returncode == 0, r.stderr
    data: dict[str, str] = json.loads(r.stdout)
    return data
