"""The supalite process: prepare the data folder, run the database, bootstrap it, serve.

Also the "database session" the CLI's db commands use: the running server's cluster when
there is one, else the embedded cluster started just for the command.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from supalite.config import Settings
from supalite.db import migrations
from supalite.db.bootstrap import bootstrap
from supalite.db.embedded import EmbeddedError, port_in_use
from supalite.keys import KeyConfigError
from supalite.runtime import Runtime, build_runtime


class StartupError(Exception):
    """One line saying what is wrong and where; supalite exits non-zero after printing it."""


Out = Callable[[str], None]


def _default_out(line: str) -> None:
    print(line, flush=True)


# ------------------------------------------------------------------ the state file


def _state_path(settings: Settings) -> Path:
    return settings.data_dir / "status.json"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_state(settings: Settings) -> dict[str, Any] | None:
    """What a live `supalite start` on this project wrote about itself, or None."""
    try:
        state = json.loads(_state_path(settings).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not _pid_alive(int(state.get("pid", 0))):
        return None
    return state


def _write_state(settings: Settings, state: dict[str, Any]) -> None:
    path = _state_path(settings)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    os.replace(tmp, path)


# ------------------------------------------------------------------ preparation


def prepare_data_dir(settings: Settings) -> None:
    d = settings.data_dir
    try:
        d.mkdir(parents=True, exist_ok=True)
        probe = d / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise StartupError(f"data folder {d} is not usable: {e.strerror or e}") from e


def _db_target(runtime: Runtime) -> str:
    if runtime.pg is not None:
        return f"127.0.0.1:{runtime.pg.port}"
    from urllib.parse import urlsplit

    parts = urlsplit(runtime.admin_url)
    return f"{parts.hostname}:{parts.port or 5432}"


_CONNECT_ERRORS = (
    TimeoutError,
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InvalidPasswordError,
    asyncpg.InvalidAuthorizationSpecificationError,
)


def _connect_error(runtime: Runtime, e: BaseException) -> StartupError:
    reason = str(e) or type(e).__name__
    return StartupError(f"cannot connect to the database at {_db_target(runtime)}: {reason}")


async def prepare_database(runtime: Runtime, out: Out, *, fresh: bool) -> None:
    """Bootstrap; on a fresh database also apply migrations and the seed (as `supabase start`)."""
    settings = runtime.settings
    try:
        applied = await bootstrap(runtime.admin_url, runtime.keys.jwt_secret)
    except _CONNECT_ERRORS as e:
        raise _connect_error(runtime, e) from e
    except asyncpg.PostgresError as e:
        raise StartupError(f"bootstrap failed on {_db_target(runtime)}: {e}") from e
    if applied:
        out(f"Initialised schema (bootstrap {', '.join(str(v) for v in applied)}).")
    if fresh:
        await migrate_and_seed(runtime, out, seed=settings.db.seed_enabled)


async def migrate_and_seed(runtime: Runtime, out: Out, *, seed: bool) -> None:
    settings = runtime.settings
    conn = await asyncpg.connect(runtime.admin_url)
    try:
        applied = await migrations.push(conn, settings.supabase_dir)
        for mig in applied:
            out(f"Applied migration {mig.path.name}")
        if seed:
            for p in await migrations.seed(conn, settings.supabase_dir, settings.db.seed_paths):
                out(f"Seeded data from {p.relative_to(settings.project_dir)}")
    finally:
        await conn.close()


@contextlib.contextmanager
def database(settings: Settings, out: Out = _default_out) -> Iterator[Runtime]:
    """A bootstrapped database for a CLI command, started for the command if need be."""
    prepare_data_dir(settings)
    try:
        runtime = build_runtime(settings)
    except (KeyConfigError, EmbeddedError) as e:
        raise StartupError(str(e)) from e
    pg = runtime.pg
    if pg is None or running_state(settings) is not None:
        asyncio.run(prepare_database(runtime, out, fresh=False))
        yield runtime
        return
    try:
        pg.init()
        pg.start()
    except EmbeddedError as e:
        raise StartupError(str(e)) from e
    try:
        asyncio.run(prepare_database(runtime, out, fresh=False))
        yield runtime
    finally:
        pg.stop()


# ------------------------------------------------------------------ serving


@dataclass(frozen=True)
class Launch:
    """How the settings were loaded, so worker processes load the very same ones."""

    project_dir: str
    config_file: str | None
    overrides: dict[str, Any]


def banner(runtime: Runtime, state: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """What `start` prints; `state` (a running server's status.json) wins over settings."""
    k = runtime.keys
    url = state["api_url"] if state else runtime.settings.api_url
    return [
        ("API URL", url),
        ("REST URL", url + "/rest/v1"),
        ("DB URL", state["db_url"] if state else runtime.db_url),
        ("Database", runtime.database_label),
        ("JWT secret", k.jwt_secret),
        ("anon key", k.anon_key),
        ("service_role key", k.service_role_key),
        ("Publishable key", k.publishable_key),
        ("Secret key", k.secret_key),
    ]


def env_lines(runtime: Runtime, state: dict[str, Any]) -> list[tuple[str, str]]:
    """`supalite status -o env`: the Supabase CLI's names, for a running server."""
    k = runtime.keys
    url = state["api_url"]
    return [
        ("API_URL", url),
        ("REST_URL", url + "/rest/v1"),
        ("GRAPHQL_URL", url + "/graphql/v1"),
        ("STORAGE_S3_URL", url + "/storage/v1/s3"),
        ("FUNCTIONS_URL", url + "/functions/v1"),
        ("DB_URL", state["db_url"]),
        ("JWT_SECRET", k.jwt_secret),
        ("ANON_KEY", k.anon_key),
        ("SERVICE_ROLE_KEY", k.service_role_key),
        ("PUBLISHABLE_KEY", k.publishable_key),
        ("SECRET_KEY", k.secret_key),
    ]


def start(settings: Settings, launch: Launch, out: Out = _default_out) -> None:
    """`supalite start`: runs in the foreground until SIGINT/SIGTERM, then stops everything."""
    import uvicorn

    from supalite.app import ENV_LAUNCH, build_app

    t0 = time.perf_counter()
    prepare_data_dir(settings)
    state = running_state(settings)
    if state is not None:
        raise StartupError(
            f"supalite is already running for {settings.project_dir} (pid {state['pid']})"
        )
    host, port = settings.api.host, settings.api.port
    if port_in_use(host, port):
        raise StartupError(f"port {port} on {host} is already in use (use --port or [api] port)")
    try:
        runtime = build_runtime(settings)
    except (KeyConfigError, EmbeddedError) as e:
        raise StartupError(str(e)) from e

    pg = runtime.pg
    try:
        if pg is not None:
            fresh = not pg.initialized
            out(f"Starting database ({runtime.database_label})...")
            if fresh:
                out(f"Initialising a new cluster in {pg.pgdata}...")
            pg.init()
            pg.start()
        else:
            fresh = False
            out(f"Connecting to the database at {_db_target(runtime)}...")
        asyncio.run(prepare_database(runtime, out, fresh=fresh))
    except EmbeddedError as e:
        if pg is not None:
            pg.stop()
        raise StartupError(str(e)) from e
    except BaseException:
        if pg is not None:
            pg.stop()
        raise

    state = {
        "pid": os.getpid(),
        "api_url": settings.api_url,
        "db_url": runtime.db_url,
        "database": runtime.database_label,
        "postgres_pid": pg.pid if pg else None,
        "workers": settings.api.workers,
        "started_at": time.time(),
    }
    _write_state(settings, state)

    os.environ[ENV_LAUNCH] = json.dumps(launch.__dict__)
    ready_note = f"Started supalite in {time.perf_counter() - t0:.2f}s."

    class _Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if not self.should_exit:
                _print_ready(out, ready_note, runtime)

    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal; turning
    # SIGTERM into KeyboardInterrupt too lets both end here, with the database stopped.
    def _interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _interrupt)
    try:
        common: dict[str, Any] = {
            "host": host,
            "port": port,
            "log_level": "warning",
            "access_log": False,
            "server_header": False,
            "lifespan": "on",
            # Realtime's sockets are not compressed, as on Supabase (Phoenix's default): deflating
            # every frame for every socket was a sixth of a fan-out's CPU.
            "ws_per_message_deflate": False,
        }
        if settings.api.workers > 1:
            from uvicorn.supervisors import Multiprocess

            config = uvicorn.Config("supalite.app:app_from_env", factory=True,
                                    workers=settings.api.workers, **common)  # fmt: skip
            # Bound before the workers start: connections queue until a worker accepts them.
            sock = config.bind_socket()
            sock.listen(config.backlog)
            out(f"Starting {settings.api.workers} workers...")
            _print_ready(out, ready_note, runtime)
            Multiprocess(config, sockets=[sock]).run()
        else:
            server = _Server(uvicorn.Config(build_app(runtime), **common))
            server.run()
            if not server.started:
                raise StartupError(f"the API server could not start on {host}:{port}")
    except KeyboardInterrupt:
        pass  # a requested stop: everything below runs, and the exit status is 0
    finally:
        with contextlib.suppress(OSError):
            _state_path(settings).unlink()
        if pg is not None:
            out("Stopping database...")
            pg.stop()
        out("Stopped supalite.")


def _print_ready(out: Out, note: str, runtime: Runtime) -> None:
    out(note)
    rows = banner(runtime)
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        out(f"{k.rjust(width)}: {v}")
    sys.stdout.flush()
