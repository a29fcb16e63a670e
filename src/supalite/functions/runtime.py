"""Worker processes for functions: a small pool per function, started on demand, reused
between calls, recycled when a limit is hit, all stopped by app.py's lifespan.

A worker serves HTTP on its own Unix socket (worker.py for Python, deno_worker.ts for
TypeScript); calls are forwarded to it over HTTP (hop.py) and the response is streamed back, so the
function never runs inside the supalite process: a crash, an endless loop or a memory blow-up
costs one worker, which the next call replaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from supalite.config import FunctionsSettings
from supalite.functions import errors
from supalite.functions.deployed import DeployedFunctions
from supalite.functions.hop import HopClient, HopError, HopResponse
from supalite.functions.output import OutputLog, parse
from supalite.functions.registry import SLUG, FunctionSpec, Registry, read_env_file
from supalite.functions.serving import Serving, session_path
from supalite.functions.worker import BOOT_FAILED, RECYCLE_HEADER

if TYPE_CHECKING:
    from supalite.logs import RequestLog
    from supalite.runtime import Runtime

# Seconds for a worker to import its function and listen (Deno may fetch npm: imports).
_BOOT_TIMEOUT = 60.0
_STOP_GRACE = 2.0
_BUFFERED = 64 * 1024  # responses up to this size (with a Content-Length) are read whole
_OUTPUT_LINE = 1024 * 1024  # a longer line of worker output is dropped (framed ones are cut)
# Worker response headers that belong to the hop between supalite and the worker.
_HOP_HEADERS = frozenset({
    "connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
    "proxy-authenticate", "proxy-authorization", "date", "server", RECYCLE_HEADER,
})  # fmt: skip
# What a worker inherits from the supalite process's environment (nothing secret: the
# database URL, the JWT secret, cloud keys stay out), before the SUPABASE_* values and .env.
_INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "VIRTUAL_ENV",
                  "PYTHONPATH", "DENO_DIR", "NPM_CONFIG_REGISTRY")  # fmt: skip

# What a worker prints when it runs out of memory (Python; V8).
_OUT_OF_MEMORY = ("MemoryError", "exceeded its memory limit", "out of memory")


def find_deno(configured: str | None, project_dir: Path) -> str | None:
    """The Deno binary: SUPALITE_DENO, then the npm `deno` package (its platform binary, not
    the node shim in .bin) in the project or the repository's JS test folder, then PATH."""
    if configured:
        return configured if Path(configured).is_file() else shutil.which(configured)
    repo = Path(__file__).resolve().parents[3]
    for base in (project_dir, repo / "tests" / "compat" / "js"):
        modules = base / "node_modules"
        found = [*sorted(modules.glob("@deno/*/deno")), modules / ".bin" / "deno"]
        for c in found:
            if c.is_file() and os.access(c, os.X_OK):
                return str(c)
    return shutil.which("deno")


# Exec'd in front of a worker that cannot ask for it itself (Deno): the kernel kills the worker
# when supalite dies, even by SIGKILL (PR_SET_PDEATHSIG survives exec), so none is orphaned.
_PDEATHSIG_EXEC = (
    "import ctypes, os, sys; ctypes.CDLL(None).prctl(1, 9); "
    "os.getppid() == int(sys.argv[1]) or os._exit(1); os.execv(sys.argv[2], sys.argv[2:])"
)


def _die_with_parent() -> list[str]:
    if not sys.platform.startswith("linux"):
        return []
    return [sys.executable, "-S", "-c", _PDEATHSIG_EXEC, str(os.getpid())]


class Worker:
    def __init__(
        self, spec: FunctionSpec, proc: asyncio.subprocess.Process, path: Path, version: float
    ) -> None:
        self.spec = spec
        self.proc = proc
        self.path = path
        self.version = version
        self.inflight = 0
        self.retired = False
        self.memory_exceeded = False
        self.client = HopClient(str(path))
        self.pump: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None and not self.retired

    async def kill(self) -> None:
        """Now, whatever it is doing (a limit was hit, or it is stuck)."""
        self.retired = True
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        await self._reap()

    async def stop(self) -> None:
        self.retired = True
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), _STOP_GRACE)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        await self._reap()

    async def _reap(self) -> None:
        await self.proc.wait()
        await self.client.aclose()
        if self.pump is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self.pump, 1.0)
        with contextlib.suppress(OSError):
            self.path.unlink()


class Pool:
    """The workers of one function.  A worker serves several calls at once (uvicorn in the
    worker is asynchronous, like edge-runtime's per_worker policy); a new one is started while
    every live worker is busy and the pool is below its size."""

    def __init__(self, runtime: FunctionsRuntime, spec: FunctionSpec) -> None:
        self.runtime = runtime
        self.spec = spec
        self.workers: list[Worker] = []
        self._spawn_lock = asyncio.Lock()
        self._seq = 0
        self.spawned = 0  # workers started so far
        # The function (spec and entrypoint version) that failed to boot: a served one's spec
        # changes with any of its files (serving.py), a folder's with its entrypoint.
        self.failed_version: tuple[FunctionSpec, float] | None = None

    async def acquire(self, spec: FunctionSpec) -> Worker:
        version = spec.version()
        if spec != self.spec or any(w.version != version for w in self.workers):
            self.spec = spec  # the file changed: new calls go to fresh workers
            for w in list(self.workers):
                self.retire(w)
        worker = self._pick(allow_busy=False)
        if worker is not None:
            worker.inflight += 1
            return worker
        async with self._spawn_lock:
            worker = self._pick(allow_busy=len(self._live()) >= self.runtime.settings.workers)
            if worker is None:
                if self.failed_version == (spec, version):
                    # It failed to boot and has not changed since: say so without starting
                    # (and paying for) another process on every call.
                    raise errors.boot_error()
                worker = await self._spawn(version)
                self.failed_version = None
                self.spawned += 1
                self.workers.append(worker)
            worker.inflight += 1
            return worker

    def _live(self) -> list[Worker]:
        return [w for w in self.workers if w.alive]

    def _pick(self, *, allow_busy: bool) -> Worker | None:
        live = self._live()
        if not live:
            return None
        best = min(live, key=lambda w: w.inflight)
        return best if best.inflight == 0 or allow_busy else None

    def release(self, worker: Worker) -> None:
        worker.inflight -= 1
        if (worker.retired or worker.proc.returncode is not None) and worker.inflight <= 0:
            self._drop(worker)

    def retire(self, worker: Worker) -> None:
        """No new calls; stopped once its current calls end."""
        worker.retired = True
        if worker.inflight <= 0:
            self._drop(worker)

    def recycle(self, worker: Worker) -> None:
        """Killed at once: it hit a limit or does not answer."""
        worker.retired = True
        if worker in self.workers:
            self.workers.remove(worker)
        self.runtime.background(worker.kill())

    def _drop(self, worker: Worker) -> None:
        if worker in self.workers:
            self.workers.remove(worker)
            self.runtime.background(worker.stop())

    async def _spawn(self, version: float) -> Worker:
        spec = self.spec
        self._seq += 1
        path = self.runtime.socket_dir / f"{spec.name}-{self._seq}.sock"
        cmd = self.runtime.command(spec, path)
        env = self.runtime.worker_env(spec)
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            cwd=spec.directory,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches supalite, which stops workers in order
            limit=_OUTPUT_LINE,
        )
        worker = Worker(spec, proc, path, version)
        worker.pump = asyncio.create_task(self.runtime.pump_output(worker))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _BOOT_TIMEOUT
        while not path.exists():
            if proc.returncode is not None or loop.time() > deadline:
                await worker.kill()
                if proc.returncode not in (None, BOOT_FAILED):
                    sys.stderr.write(f"functions/{spec.name}: worker exited {proc.returncode}\n")
                self.failed_version = (spec, version)
                raise errors.boot_error()
            await asyncio.sleep(0.003)
        return worker


@dataclass
class Upstream:
    """A function's response, its body still to be streamed."""

    status: int
    headers: list[tuple[str, str]]
    body: AsyncIterator[bytes] | bytes  # bytes: a small response, read whole


@dataclass
class _BodyCounter:
    limit: int
    total: int = 0
    exceeded: bool = False


class _TooLarge(Exception):
    pass


@dataclass
class FunctionsRuntime:
    registry: Registry
    settings: FunctionsSettings
    env: Mapping[str, str]  # SUPABASE_URL, keys, DB URL: what every worker gets
    project_dir: Path
    pools: dict[str, Pool] = field(default_factory=dict)
    socket_dir: Path = field(default_factory=lambda: Path("."))
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    deployed: DeployedFunctions | None = None  # functions and secrets stored in the database
    output: OutputLog = field(default_factory=lambda: OutputLog(None))  # what functions print
    serving: Serving | None = None  # `supalite functions serve` (serving.py)

    async def start(self) -> None:
        # Short paths: a Unix socket path must fit in 108 bytes.
        self.socket_dir = Path(tempfile.mkdtemp(prefix="supalite-fn-"))
        if self.deployed is not None:
            await self.deployed.start()

    async def stop(self) -> None:
        workers = [w for p in self.pools.values() for w in p.workers]
        self.pools.clear()
        await asyncio.gather(*(w.stop() for w in workers), return_exceptions=True)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.deployed is not None:
            await self.deployed.stop()
        shutil.rmtree(self.socket_dir, ignore_errors=True)

    def background(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[call-overload]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def lookup(self, name: str) -> FunctionSpec:
        """A function of the local folder only (see resolve)."""
        spec = self.registry.get(name)
        if spec is None:
            raise errors.not_found()
        return spec

    async def resolve(self, name: str) -> FunctionSpec:
        """The function a call to `name` runs: the deployed version when there is one (it is
        what every process serves, whatever their folders hold), else the local folder's."""
        if not SLUG.match(name):
            raise errors.not_found()
        serving = self.serving
        session = serving.session() if serving is not None else None
        if serving is not None and session is not None and session.covers(name):
            local = self.registry.get(name)
            if local is not None:  # being edited: the folder wins over a deployed version
                return serving.serve(self._with_env_rev(local), session)
        spec = await self.deployed.spec(name) if self.deployed is not None else None
        if spec is None:
            spec = self.registry.get(name)
        if spec is None:
            pool = self.pools.pop(name, None)
            if pool is not None:  # deleted: its idle workers go now, not at shutdown
                for w in list(pool.workers):
                    pool.retire(w)
            raise errors.not_found()
        return self._with_env_rev(spec)

    def _with_env_rev(self, spec: FunctionSpec) -> FunctionSpec:
        if self.deployed is not None:
            spec = replace(spec, env_rev=self.deployed.env_rev)
        return spec

    def worker_pids(self) -> list[int]:
        return [w.proc.pid for p in self.pools.values() for w in p.workers]

    # ------------------------------------------------------------------ workers

    def command(self, spec: FunctionSpec, path: Path) -> list[str]:
        if spec.lang == "python":
            mem = str(self.settings.memory_limit)
            entry = str(spec.entrypoint)
            return [sys.executable, "-m", "supalite.functions.worker", str(path), entry, mem,
                    str(os.getpid())]  # fmt: skip
        deno = find_deno(self.settings.deno, self.project_dir)
        if deno is None:
            raise errors.no_deno()
        bootstrap = Path(__file__).with_name("deno_worker.ts")
        mem_mb = max(16, self.settings.memory_limit // (1024 * 1024))
        return [*_die_with_parent(), deno, "run", "--allow-all", "--no-prompt", "--quiet",
                f"--v8-flags=--max-old-space-size={mem_mb}",
                str(bootstrap), str(path), spec.entrypoint.as_uri()]  # fmt: skip

    def worker_env(self, spec: FunctionSpec) -> dict[str, str]:
        env = {k: os.environ[k] for k in _INHERITED_ENV if k in os.environ}
        if spec.env_file is None:
            env.update(self.registry.secrets())
        if self.deployed is not None:  # `supalite secrets set` wins over the local .env
            env.update(self.deployed.env)
        if spec.env_file is not None:
            # `functions serve`: its env file wins over stored secrets while serving.
            env.update(read_env_file(spec.env_file))
        env.update(self.env)
        env["PYTHONUNBUFFERED"] = "1"
        env["MALLOC_ARENA_MAX"] = "2"  # glibc arenas reserve 64 MiB of address space each
        return env

    async def pump_output(self, worker: Worker) -> None:
        """A worker's print()/console.log and tracebacks, into the request log (output.py)."""
        stream = worker.proc.stdout
        if stream is None:
            return
        key = f"worker {worker.proc.pid}"
        while True:
            try:
                line = await stream.readline()
            except ValueError:  # over the reader's limit: dropped, the pipe keeps flowing
                line = f"(a line of output over {_OUTPUT_LINE} bytes was dropped)\n".encode()
            if not line:
                return
            eid, level, text = parse(line.decode("utf-8", "replace").rstrip("\n"))
            if any(sign in text for sign in _OUT_OF_MEMORY):
                worker.memory_exceeded = True
            self.output.write(worker.spec.name, eid, level, text, key=key)

    # ------------------------------------------------------------------ calls

    async def invoke(
        self,
        spec: FunctionSpec,
        method: str,
        path: str,
        headers: list[tuple[str, str]],
        body: AsyncIterator[bytes] | None,
        content_length: int | None,
    ) -> Upstream:
        limits = self.settings
        if content_length is not None and content_length > limits.max_request_size:
            raise errors.too_large(limits.max_request_size)
        pool = self.pools.get(spec.name)
        if pool is None:
            pool = self.pools[spec.name] = Pool(self, spec)
        worker = await pool.acquire(spec)
        counter = _BodyCounter(limits.max_request_size)
        content = _counted(body, counter) if body is not None else None
        try:
            async with asyncio.timeout(limits.wall_time):
                response = await worker.client.send(method, path, headers, content, content_length)
        except TimeoutError:
            pool.recycle(worker)
            pool.release(worker)
            raise errors.timed_out() from None
        except (HopError, _TooLarge) as e:
            if counter.exceeded:
                pool.recycle(worker)
                pool.release(worker)
                raise errors.too_large(limits.max_request_size) from None
            raise await self._lost(pool, worker) from e
        if response.header(RECYCLE_HEADER.encode()):
            pool.retire(worker)  # stopped once this response is sent
        raw_length = response.header(b"content-length")
        declared = int(raw_length) if raw_length and raw_length.isdigit() else None
        if declared is not None and declared > limits.max_response_size:
            response.close()
            pool.recycle(worker)
            pool.release(worker)
            raise errors.worker_limit()
        out_headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in response.headers
            if k.decode("latin-1").lower() not in _HOP_HEADERS
        ]
        if declared is not None and declared <= _BUFFERED:
            # Small and complete: read it here and answer in one piece (no streaming machinery,
            # and the caller gets headers and body together).
            try:
                async with asyncio.timeout(limits.wall_time):
                    data = await response.read()
            except TimeoutError:
                response.close()
                pool.recycle(worker)
                pool.release(worker)
                raise errors.timed_out() from None
            except HopError as e:
                response.close()
                raise await self._lost(pool, worker) from e  # releases the worker
            response.close()
            pool.release(worker)
            return Upstream(response.status, out_headers, data)
        return Upstream(response.status, out_headers, self._stream(pool, worker, response))

    async def _lost(self, pool: Pool, worker: Worker) -> errors.FunctionsError:
        """The worker went away mid-call: it crashed or ran out of memory."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(worker.proc.wait(), 1.0)
        if worker.pump is not None:  # its last words say why
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(worker.pump), 1.0)
        pool.recycle(worker)
        pool.release(worker)
        return errors.worker_limit() if worker.memory_exceeded else errors.worker_error()

    async def _stream(
        self, pool: Pool, worker: Worker, response: HopResponse
    ) -> AsyncIterator[bytes]:
        """The body as the worker sends it.  A limit hit mid-stream, or a worker dying, aborts
        the caller's response (the connection is cut, so the caller cannot take a partial body
        for a whole one) and recycles the worker."""
        limits = self.settings
        total = 0
        chunks = response.chunks()
        name = worker.spec.name
        try:
            while True:
                try:
                    async with asyncio.timeout(limits.wall_time):
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    pool.recycle(worker)
                    raise StreamAborted(f"functions/{name}: no data within the wall time") from None
                except HopError:
                    pool.recycle(worker)
                    raise StreamAborted(f"functions/{name}: the worker died mid-response") from None
                total += len(chunk)
                if total > limits.max_response_size:
                    pool.recycle(worker)
                    raise StreamAborted(f"functions/{name}: response over the size limit")
                yield chunk
        finally:
            await chunks.aclose()
            response.close()
            pool.release(worker)


class StreamAborted(Exception):
    """A streamed response cut short: raised into the ASGI server, which drops the connection."""


async def _counted(body: AsyncIterator[bytes], counter: _BodyCounter) -> AsyncIterator[bytes]:
    async for chunk in body:
        counter.total += len(chunk)
        if counter.total > counter.limit:
            counter.exceeded = True
            raise _TooLarge
        if chunk:
            yield chunk


def build_functions(rt: Runtime, log: RequestLog | None = None) -> FunctionsRuntime:
    """The Functions runtime of a supalite process, with the environment Supabase injects
    (`supabase/cli:apps/cli-go/internal/functions/serve/serve.go`)."""
    s = rt.settings
    keys = rt.keys
    env = {
        "SUPABASE_URL": s.api_url,
        "SUPABASE_ANON_KEY": keys.anon_key,
        "SUPABASE_SERVICE_ROLE_KEY": keys.service_role_key,
        "SUPABASE_DB_URL": rt.db_url,
        "SUPABASE_PUBLISHABLE_KEYS": json.dumps({"default": keys.publishable_key}),
        "SUPABASE_SECRET_KEYS": json.dumps({"default": keys.secret_key}),
    }
    registry = Registry(s.supabase_dir, s.functions.per_function)
    deployed = DeployedFunctions(rt.admin_url, s.data_dir, keys.jwt_secret)
    serving = Serving(session_path(s.data_dir), registry.functions_dir)
    return FunctionsRuntime(
        registry, s.functions, env, s.project_dir,
        deployed=deployed, output=OutputLog(log), serving=serving,
    )  # fmt: skip
