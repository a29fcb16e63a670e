"""The embedded PostgreSQL: a private cluster in the project's data folder, run by supalite.

System PostgreSQL binaries are preferred when present (they bring the contrib extensions);
otherwise the ones bundled in the `pgserver` wheel.  The cluster is an ordinary one: fsync on,
listening on loopback TCP (for psql and the user's own tools) and on a Unix socket inside the
data folder (for supalite's own pools, which is faster).  It is started as a child process and
stopped with a fast shutdown; if supalite dies, the kernel tells postgres to shut down
(PR_SET_PDEATHSIG), and a cluster left by a crash is recovered by postgres itself on next start.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

SUPERUSER = "postgres"
SUPERUSER_PASSWORD = "postgres"  # as `supabase start`; the TCP listener is loopback only
DATABASE = "postgres"
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes; leave room for "/.s.PGSQL.NNNNN"


class EmbeddedError(Exception):
    """A problem with the embedded cluster, phrased for the person running supalite."""


@dataclass(frozen=True)
class Binaries:
    bindir: Path
    origin: str  # "system" or "pgserver"
    version: str  # e.g. "15.18"

    def tool(self, name: str) -> str:
        return str(self.bindir / name)


def _version_of(bindir: Path) -> str | None:
    try:
        out = subprocess.run(
            [str(bindir / "postgres"), "--version"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"(\d+(?:\.\d+)?)", out)
    return m.group(1) if m else None


def _system_bindirs() -> list[Path]:
    found: list[Path] = []
    env_dir = os.environ.get("SUPALITE_PG_BINDIR")
    if env_dir:
        found.append(Path(env_dir))
    # Debian/Ubuntu keep each major version apart; newest first.
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        versions = sorted(
            (p for p in root.iterdir() if p.name.isdigit()), key=lambda p: int(p.name), reverse=True
        )
        found += [v / "bin" for v in versions]
    on_path = shutil.which("pg_ctl")
    if on_path:
        found.append(Path(on_path).resolve().parent)
    return found


def _pgserver_bindir() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return bindir if (bindir / "postgres").exists() else None


def find_binaries(prefer: str | None = None) -> Binaries:
    """System PostgreSQL ≥ 15 if installed, else pgserver's bundled one.

    `prefer` ("system" or "pgserver", or env SUPALITE_PG_BINARIES) forces one of them.
    """
    prefer = prefer or os.environ.get("SUPALITE_PG_BINARIES") or None
    candidates: list[tuple[Path, str]] = []
    if prefer != "pgserver":
        candidates += [(d, "system") for d in _system_bindirs()]
    if prefer != "system":
        bundled = _pgserver_bindir()
        if bundled:
            candidates.append((bundled, "pgserver"))
    for bindir, origin in candidates:
        if not (bindir / "postgres").exists() or not (bindir / "initdb").exists():
            continue
        version = _version_of(bindir)
        if version and int(version.split(".")[0]) >= 15:
            return Binaries(bindir, origin, version)
    raise EmbeddedError(
        "no PostgreSQL ≥ 15 binaries found: install the 'pgserver' package "
        "(pip install pgserver) or a system PostgreSQL, or set DATABASE_URL"
    )


def _run_as() -> pwd.struct_passwd | None:
    """PostgreSQL refuses to run as root; as root, run it as an unprivileged account."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "supalite"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "supalite"],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam("supalite")


def _make_traversable(path: Path) -> None:
    """Let the unprivileged postgres account reach `path`: o+x on each parent (no read)."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            os.chmod(parent, mode | 0o001)


def _die_with_parent() -> None:
    # Runs in the child between fork and exec (after the uid switch, which would clear it).
    # SIGINT is postgres's "fast shutdown": it rolls back open work and checkpoints.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG
    os.setsid()  # keep Ctrl-C in the terminal from reaching postgres before supalite decides


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


class EmbeddedPostgres:
    """One cluster under `<data_dir>/pg`, its socket in `<data_dir>/run`."""

    def __init__(self, data_dir: Path, port: int, binaries: Binaries | None = None) -> None:
        self.data_dir = data_dir
        self.pgdata = data_dir / "pg"
        self.port = port
        self.binaries = binaries or find_binaries()
        self.account = _run_as()
        # As root, children drop to the unprivileged account (and its groups only).
        self._uid = self.account.pw_uid if self.account else None
        self._gid = self.account.pw_gid if self.account else None
        self._groups: list[int] | None = [] if self.account else None
        self.process: subprocess.Popen[bytes] | None = None
        run_dir = data_dir / "run"
        self.socket_dir: Path | None = run_dir if len(str(run_dir)) < _SOCKET_PATH_MAX else None
        self.log_path = data_dir / "logs" / "postgres.log"

    # ---------------------------------------------------------------- URLs

    @property
    def tcp_url(self) -> str:
        return f"postgresql://{SUPERUSER}:{SUPERUSER_PASSWORD}@127.0.0.1:{self.port}/{DATABASE}"

    def local_url(self, user: str = SUPERUSER, password: str = SUPERUSER_PASSWORD) -> str:
        """Fastest URL for supalite's own pools: the Unix socket when the path fits."""
        auth = f"{quote(user, safe='')}:{quote(password, safe='')}"
        if self.socket_dir is not None:
            return f"postgresql://{auth}@/{DATABASE}?host={quote(str(self.socket_dir))}&port={self.port}"
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{DATABASE}"

    # ---------------------------------------------------------------- lifecycle

    @property
    def initialized(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def _chown(self, path: Path) -> None:
        if self.account is not None:
            os.chown(path, self.account.pw_uid, self.account.pw_gid)

    def init(self) -> None:
        """initdb into `<data_dir>/pg`; a half-made folder from an interrupted run is redone."""
        if self.initialized:
            return
        if self.pgdata.exists():
            shutil.rmtree(self.pgdata)  # no PG_VERSION: initdb never finished, nothing to keep
        self.pgdata.mkdir(parents=True, mode=0o700)
        if self.account is not None:
            _make_traversable(self.data_dir)
            _make_traversable(self.binaries.bindir)
        self._chown(self.pgdata)
        pwfile = self.data_dir / ".pwfile"
        pwfile.write_text(SUPERUSER_PASSWORD + "\n")
        self._chown(pwfile)
        try:
            proc = subprocess.run(
                [
                    self.binaries.tool("initdb"),
                    "-D", str(self.pgdata),
                    "-U", SUPERUSER,
                    "--pwfile", str(pwfile),
                    "--auth-local=scram-sha-256",
                    "--auth-host=scram-sha-256",
                    "-E", "UTF8",
                    "--locale=C.UTF-8" if _has_c_utf8() else "--locale=C",
                ],
                capture_output=True,
                text=True,
                timeout=300,
                preexec_fn=_die_with_parent,
                cwd=str(self.data_dir),
                user=self._uid,
                group=self._gid,
                extra_groups=self._groups,
            )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)
        if proc.returncode != 0:
            shutil.rmtree(self.pgdata, ignore_errors=True)
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise EmbeddedError(
                f"initdb failed in {self.pgdata}: {detail[-1] if detail else proc.returncode}"
            )

    def _stop_leftover(self) -> None:
        """A postmaster from an earlier supalite that was killed -9 may still run: stop it."""
        pidfile = self.pgdata / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return  # not running: postgres itself clears a stale pid file
        if b"postgres" not in cmdline and b"postmaster" not in cmdline:
            return  # pid reused by something else; postgres will see that too
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _running(pid):
            time.sleep(0.05)
        if _running(pid):
            raise EmbeddedError(f"an earlier PostgreSQL (pid {pid}) on {self.pgdata} did not stop")

    def start(self, timeout: float = 60.0) -> None:
        if self.process is not None:
            return
        if not self.initialized:
            raise EmbeddedError(f"{self.pgdata} holds no PostgreSQL cluster")
        self._stop_leftover()
        if port_in_use("127.0.0.1", self.port):
            raise EmbeddedError(
                f"database port {self.port} is already in use on 127.0.0.1 "
                "(set [db] port in supabase/config.toml or SUPALITE_DB_PORT)"
            )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        socket_dirs = ""
        if self.socket_dir is not None:
            self.socket_dir.mkdir(parents=True, exist_ok=True)
            os.chmod(self.socket_dir, 0o700)
            self._chown(self.socket_dir)
            socket_dirs = str(self.socket_dir)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
        try:
            self.process = subprocess.Popen(
                [
                    self.binaries.tool("postgres"),
                    "-D", str(self.pgdata),
                    "-p", str(self.port),
                    "-c", "listen_addresses=127.0.0.1",
                    "-c", f"unix_socket_directories={socket_dirs}",
                    "-c", "fsync=on",
                    "-c", "synchronous_commit=on",
                    "-c", "max_connections=200",
                    "-c", "shared_buffers=32MB",
                    "-c", "wal_level=logical",
                    "-c", "max_wal_senders=10",
                    "-c", "max_replication_slots=10",
                    "-c", "logging_collector=off",
                    "-c", "log_min_messages=warning",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
                cwd=str(self.data_dir),
                user=self._uid,
                group=self._gid,
                extra_groups=self._groups,
            )  # fmt: skip
        finally:
            log.close()
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pidfile = self.pgdata / "postmaster.pid"
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                self.process = None
                raise EmbeddedError(
                    f"PostgreSQL exited during start-up: {self._last_log_line()} "
                    f"(log: {self.log_path})"
                )
            # Line 8 of postmaster.pid is the status, "ready" once it accepts connections; line 1
            # must be our postmaster's pid, not that of a crashed one whose file is still there.
            with contextlib.suppress(OSError):
                lines = pidfile.read_text().splitlines()
                if (
                    len(lines) >= 8
                    and lines[0].strip() == str(self.process.pid)
                    and lines[7].strip() == "ready"
                ):
                    return
            time.sleep(0.02)
        self.stop()
        raise EmbeddedError(f"PostgreSQL did not become ready in {timeout:.0f}s ({self.log_path})")

    def _last_log_line(self) -> str:
        try:
            lines = [
                ln for ln in self.log_path.read_text(errors="replace").splitlines() if ln.strip()
            ]
        except OSError:
            return "no log"
        for ln in reversed(lines):
            if "FATAL" in ln or "PANIC" in ln or "ERROR" in ln:
                return ln.strip()
        return lines[-1].strip() if lines else "no log"

    def stop(self, timeout: float = 30.0) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)  # fast shutdown
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGQUIT)  # immediate shutdown; WAL replay on next start
            proc.wait(10)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None


def _running(pid: int) -> bool:
    """Alive and not a zombie (an exited child not yet reaped by its parent)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _has_c_utf8() -> bool:
    try:
        out = subprocess.run(["locale", "-a"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return any(line.lower() in ("c.utf8", "c.utf-8") for line in out.splitlines())
