"""What every bench script needs to drive a live server: a free port, `supalite start` with the
keys its banner prints, waiting for it, and `wrk` run against it with its figures parsed
(requests/s, p50 and p99 in ms)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_supalite(
    cwd: Path, env: dict[str, str], *args: str
) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """`supalite start ARGS` in `cwd`, and what its banner says ("anon key", "service_role
    key", "DB URL", …).  The rest of its output is drained, so it never blocks on a full pipe."""
    server = subprocess.Popen(
        [sys.executable, "-m", "supalite.cli", "start", *args], cwd=cwd, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    banner: dict[str, str] = {}
    assert server.stdout is not None
    for line in server.stdout:
        key, sep, value = line.strip().partition(": ")
        if sep:
            banner[key] = value.strip()
        if key == "Secret key":
            break
    if "anon key" not in banner:
        server.kill()
        raise SystemExit("supalite did not start")
    threading.Thread(target=server.stdout.read, daemon=True).start()
    return server, banner


def wait_http(url: str, headers: dict[str, str] | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, headers=headers, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{url} did not come up")


def wrk(
    url: str,
    headers: dict[str, str],
    script: str,
    seconds: int,
    *,
    threads: int = 2,
    connections: int = 32,
    request_timeout: str | None = None,
) -> dict[str, float]:
    """One wrk run; any failed request (non-2xx/3xx or a timeout) ends the bench."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if request_timeout:
        cmd += ["--timeout", request_timeout]
    cmd += ["-s", f.name]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=seconds + 90).stdout
    os.unlink(f.name)
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m is None:
        raise SystemExit(f"wrk failed on {url}:\n{out}")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: .*timeout (\d+)", out)
    if non2xx or (errors and int(errors.group(1))):
        raise SystemExit(f"{url}: failed requests\n{out}")

    def pct(p: str) -> float:
        found = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        assert found, out
        return float(found.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[found.group(2)]

    return {"rps": float(m.group(1)), "p50": pct("50"), "p99": pct("99")}
