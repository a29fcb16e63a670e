"""A live supalite serving the functions of functions_src.py, one per test module."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import psutil
import pytest

from tests.functions.functions_src import CONFIG, DOTENV, FUNCTIONS, MIGRATION
from tests.helpers import LiveServer, free_port

_AMBIENT = ("DATABASE_URL", "JWT_SECRET", "PORT", "SITE_URL")
USERS = {"alice": str(uuid.UUID(int=1)), "bob": str(uuid.UUID(int=2))}


def make_project(base: Path) -> Path:
    from supalite.cli import main

    assert main(["init", "--workdir", str(base)]) == 0
    supa = base / "supabase"
    cfg = supa / "config.toml"
    text = cfg.read_text().replace("port = 54322", f"port = {free_port()}")
    cfg.write_text(text.replace("port = 54321", f"port = {free_port()}") + CONFIG)
    for name, files in FUNCTIONS.items():
        folder = supa / "functions" / name
        folder.mkdir(parents=True, exist_ok=True)
        for filename, source in files.items():
            (folder / filename).write_text(source)
    (supa / "functions" / ".env").write_text(DOTENV)
    (supa / "migrations" / "20240101000000_notes.sql").write_text(MIGRATION)
    return base


def user_token(secret: str, user: str) -> str:
    now = int(time.time())
    claims = {"sub": USERS[user], "role": "authenticated", "aud": "authenticated",
              "email": f"{user}@example.com", "iat": now, "exp": now + 3600}  # fmt: skip
    return jwt.encode(claims, secret, algorithm="HS256")


@dataclass
class Served:
    server: LiveServer
    project: Path

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def fn_url(self) -> str:
        return self.server.url + "/functions/v1"

    def token(self, user: str) -> str:
        return user_token(self.server.info["JWT secret"], user)

    def anon_headers(self) -> dict[str, str]:
        key = self.server.anon_key
        return {"apikey": key, "Authorization": f"Bearer {key}"}

    def log(self) -> str:
        return "".join(self.server.output)


def assert_sse_streams(served: Served, function: str, gate: Path) -> None:
    """`function` sends "data: one", waits for `gate` to exist, then sends "data: two": both
    arrive in order only if the response streams (a buffered one would never finish)."""
    with (
        httpx.Client(timeout=60) as c,
        c.stream(
            "GET", f"{served.fn_url}/{function}", params={"gate": str(gate)},
            headers=served.anon_headers(),
        ) as r,
    ):  # fmt: skip
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        assert next(lines) == "data: one"
        gate.write_text("go")
        rest = [line for line in lines if line]
    assert rest == ["data: two"]


def is_worker(cmdline: list[str]) -> bool:
    line = " ".join(cmdline)
    return "supalite.functions.worker" in line or "deno_worker.ts" in line


def worker_pids(server_pid: int) -> set[int]:
    """The function workers (Python and Deno) of a supalite process."""
    try:
        children = psutil.Process(server_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return set()
    out = set()
    for child in children:
        try:
            if is_worker(child.cmdline()):
                out.add(child.pid)
        except psutil.NoSuchProcess:
            continue
    return out


def all_worker_pids() -> set[int]:
    out = set()
    for p in psutil.process_iter(["cmdline"]):
        if is_worker(p.info["cmdline"] or []):
            out.add(p.pid)
    return out


def serve(base: Path, env: dict[str, str] | None = None) -> LiveServer:
    server = LiveServer(make_project(base))
    for name in list(server.env):
        if name in _AMBIENT or name.startswith(("SUPALITE_", "PGRST_", "SMTP_", "GOTRUE_")):
            del server.env[name]
    server.env.update({
        "SUPALITE_FUNCTIONS_WALL_TIME": "3s",
        "SUPALITE_FUNCTIONS_MEMORY_LIMIT": "200MiB",
        "SUPALITE_FUNCTIONS_MAX_REQUEST_SIZE": "1MiB",
        "SUPALITE_FUNCTIONS_MAX_RESPONSE_SIZE": "2MiB",
        "SUPALITE_TEST_LEAK": "must-not-reach-functions",
        **(env or {}),
    })  # fmt: skip
    server.start()
    return server


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("functions")
    server = serve(base)
    try:
        yield Served(server, base)
    finally:
        server.stop()
        kill_leftover_workers(base)


def kill_leftover_workers(base: Path) -> None:
    """Workers run in their function's folder: any still alive under `base` is a leak (the
    test that checks for leaks fails first); kill it so it outlives no test run."""
    for pid in all_worker_pids():
        try:
            if psutil.Process(pid).cwd().startswith(str(base)):
                os.kill(pid, 9)
        except (psutil.Error, OSError):
            pass
