"""`supalite functions serve`: local folders served on the running server, hot reloaded, winning
over deployed versions while it runs; the calls and their output printed as they happen."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from supalite.cli import main
from tests.functions.conftest import Served, kill_leftover_workers, serve
from tests.functions.deployed import deploy, versioned

# A Python function built from a sibling module and a module of the shared `_shared` folder.
HOT_PY = """
import os, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "_shared"))
import common, helper

async def handler(request):
    print("hot says", helper.WORD)
    return {"helper": helper.WORD, "shared": common.WORD, "pid": os.getpid(),
            "env": os.environ.get("SERVE_VALUE")}
"""

HOT_TS = """
import { WORD } from "../_shared/greet.ts"
Deno.serve(() => Response.json({ shared: WORD }))
"""


def write(path: Path, text: str) -> None:
    """A new content of a new size: a distinct stamp however coarse the file system's clock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


class ServeCommand:
    """`supalite functions serve ARGS` in a subprocess, its output collected as it comes."""

    def __init__(self, served: Served, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "supalite.cli", "functions", "serve", *args,
             "--workdir", str(served.project)],
            env=served.server.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            # Ctrl-C as at a terminal, even when the tests run in the background of a shell
            # without job control (which starts them with SIGINT ignored, inherited).
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            assert self.proc.poll() is None or text in self.output, self.output
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.output}"
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGINT) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._reader.join(timeout=5)
        return code


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("functions-serve")
    server = serve(base)
    fns = base / "supabase" / "functions"
    write(fns / "hot" / "main.py", HOT_PY)
    write(fns / "hot" / "helper.py", "WORD = 'helper-1'\n")
    write(fns / "_shared" / "common.py", "WORD = 'shared-1'\n")
    write(fns / "hot-ts" / "index.ts", HOT_TS)
    write(fns / "_shared" / "greet.ts", 'export const WORD = "greet-1"\n')
    try:
        yield Served(server, base)
    finally:
        server.stop()
        kill_leftover_workers(base)


def get(served: Served, name: str, auth: bool = True) -> httpx.Response:
    headers = served.anon_headers() if auth else {}
    return httpx.get(f"{served.fn_url}/{name}", headers=headers, timeout=30)


def test_serve_hot_reloads_local_files_over_the_deployed_version(served: Served) -> None:
    fns = served.project / "supabase" / "functions"
    deploy(served, "hot", versioned("deployed"))
    assert get(served, "hot").json()["version"] == "deployed"  # without serve: deployed wins

    cmd = ServeCommand(served)
    try:
        cmd.wait_for("Edits are served at the next call")
        assert f"{served.fn_url}/hot (python, verify_jwt)" in cmd.output
        first = get(served, "hot").json()
        assert first["helper"] == "helper-1" and first["shared"] == "shared-1"
        assert get(served, "hot").json()["pid"] == first["pid"]  # unchanged: same worker

        write(fns / "hot" / "helper.py", "WORD = 'helper-two'\n")  # a file of its folder
        second = get(served, "hot").json()
        assert second["helper"] == "helper-two" and second["pid"] != first["pid"]

        write(fns / "_shared" / "common.py", "WORD = 'shared-two'\n")  # a shared file
        assert get(served, "hot").json()["shared"] == "shared-two"

        # A module it imports breaks: a boot error, whose trace the command shows; fixing that
        # module (the entrypoint unchanged) is enough to boot again.
        write(fns / "hot" / "helper.py", "WORD = 'unclosed\n")
        r = get(served, "hot")
        assert r.status_code == 503 and r.json()["code"] == "BOOT_ERROR"
        cmd.wait_for("SyntaxError: unterminated string literal")
        write(fns / "hot" / "helper.py", "WORD = 'helper-three'\n")
        assert get(served, "hot").json()["helper"] == "helper-three"

        assert get(served, "hot-ts").json() == {"shared": "greet-1"}
        write(fns / "_shared" / "greet.ts", 'export const WORD = "greet-two"\n')
        assert get(served, "hot-ts").json() == {"shared": "greet-two"}

        # Calls and what the function prints show up in the command's output.
        cmd.wait_for("log: hot says helper-three")
        cmd.wait_for("GET /functions/v1/hot -> 200")
    finally:
        assert cmd.stop() == 0
    assert "Stopped serving local functions" in cmd.output
    assert get(served, "hot").json()["version"] == "deployed"  # the deployed one again


def test_env_file_and_no_verify_jwt(served: Served, tmp_path: Path) -> None:
    env = tmp_path / "serve.env"
    env.write_text("SERVE_VALUE=one\n")
    assert get(served, "hot-ts", auth=False).status_code == 401
    cmd = ServeCommand(served, "hot-ts", "hot", "--env-file", str(env), "--no-verify-jwt")
    try:
        cmd.wait_for("Edits are served at the next call")
        assert "(python, no JWT check)" in cmd.output
        r = get(served, "hot", auth=False)
        assert r.status_code == 200 and r.json()["env"] == "one"
        env.write_text("SERVE_VALUE=second\n")  # the env file is watched too
        assert get(served, "hot", auth=False).json()["env"] == "second"
        assert get(served, "hot-ts", auth=False).status_code == 200
        # Only the functions named are served from the command: the others as before.
        assert get(served, "hello", auth=False).status_code == 401
    finally:
        assert cmd.stop(signal.SIGTERM) == 0
    assert get(served, "hot-ts", auth=False).status_code == 401


def test_a_killed_serve_ends_its_session(served: Served) -> None:
    deploy(served, "hot", versioned("deployed"))
    cmd = ServeCommand(served, "hot")
    cmd.wait_for("Edits are served at the next call")
    assert "helper" in get(served, "hot").json()
    cmd.stop(signal.SIGKILL)  # no chance to clean up
    deadline = time.monotonic() + 20
    while get(served, "hot").json().get("version") != "deployed":
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_serve_refuses_what_it_cannot_do(
    served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workdir = ["--workdir", str(served.project)]
    assert main(["functions", "serve", "no-such-function", *workdir]) == 1
    assert "no function 'no-such-function'" in capsys.readouterr().err
    assert main(["functions", "serve", "--env-file", str(tmp_path / "missing"), *workdir]) == 1
    assert "no such file" in capsys.readouterr().err

    cmd = ServeCommand(served)
    try:
        cmd.wait_for("Edits are served at the next call")
        assert main(["functions", "serve", *workdir]) == 1
        assert f"already runs for this project (pid {cmd.proc.pid})" in capsys.readouterr().err
    finally:
        cmd.stop()

    assert main(["init", "--workdir", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["functions", "serve", "--workdir", str(tmp_path)]) == 1
    assert "run `supalite start` first" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "supabase" / ".supalite" / "functions" / "serve.json")
