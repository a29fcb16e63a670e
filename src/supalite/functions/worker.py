"""One function's worker process: `python -m supalite.functions.worker SOCKET ENTRY MEMORY PPID`.

It imports the function's `main.py` (a failure there is a boot error: exit status 3 before the
socket exists), caps its own address space, then serves HTTP on a Unix socket with uvicorn, so
streamed bodies and server-sent events pass through as they are produced.  The socket is bound
under a temporary name and renamed once listening: its path appearing is the "ready" signal.

What the function prints (sys.stdout, sys.stderr) and its tracebacks leave as framed lines on
stdout, each with the execution id of the call that printed it (output.py); the id comes in a
header taken off before the function sees the request.

The function's `handler(request)` takes a Starlette Request and returns a Starlette Response,
or a dict/list (JSON), str (text), bytes (octet-stream) or None (204).  It may be sync or async.
"""

from __future__ import annotations

import contextvars
import ctypes
import inspect
import io
import os
import resource
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Callable
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from typing import Any

import uvicorn
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from supalite.functions.output import EXECUTION_HEADER, frame

# Set on a response when this worker must not serve again (a memory limit was hit): the
# supervisor strips it and recycles the worker.
RECYCLE_HEADER = "x-supalite-recycle"
BOOT_FAILED = 3

Handler = Callable[[Request], Any]

_WORKER_ERROR = {
    "code": "WORKER_ERROR",
    "message": "Function exited due to an error (please check logs)",
}
_WORKER_LIMIT = {
    "code": "WORKER_LIMIT",
    "message": "Worker failed to respond due to a resource limit (please check logs)",
}


# The call running in this context (task or thread): what print() output belongs to.
_execution: contextvars.ContextVar[str | None] = contextvars.ContextVar("execution", default=None)
_EXECUTION_KEY = EXECUTION_HEADER.encode("latin-1")


class _Emitter:
    """Whole framed lines to the real stdout (the pipe to supalite), one writer at a time."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lock = threading.Lock()

    def emit(self, execution_id: str | None, level: str, message: str) -> None:
        data = frame(execution_id, level, message).encode("utf-8", "replace")
        with self.lock:
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view) :]


class _TaggedStream(io.TextIOBase):
    """sys.stdout / sys.stderr: text split into lines, each framed with the current call's
    execution id (a partial line waits for its end, or for the end of the call)."""

    def __init__(self, emitter: _Emitter, level: str) -> None:
        self.emitter = emitter
        self.level = level
        self._partial: dict[str | None, str] = {}
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        eid = _execution.get()
        with self._lock:
            *lines, rest = (self._partial.pop(eid, "") + text).split("\n")
            if rest:
                self._partial[eid] = rest
        for line in lines:
            self.emitter.emit(eid, self.level, line)
        return len(text)

    def end(self, eid: str | None) -> None:
        with self._lock:
            rest = self._partial.pop(eid, None)
        if rest:
            self.emitter.emit(eid, self.level, rest)


def _capture_output() -> tuple[_Emitter, list[_TaggedStream]]:
    emitter = _Emitter(os.dup(1))
    streams = [_TaggedStream(emitter, "log"), _TaggedStream(emitter, "error")]
    sys.stdout, sys.stderr = streams
    return emitter, streams


def _die_with_parent(ppid: int) -> None:
    """Linux: SIGKILL this process when supalite dies, even by SIGKILL: no orphans."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != ppid:  # the parent died before prctl took effect
        os._exit(1)


def _load_handler(entry: Path) -> Handler:
    sys.path.insert(0, str(entry.parent))
    spec = spec_from_file_location("main", entry)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {entry}")
    module = module_from_spec(spec)
    sys.modules["main"] = module
    spec.loader.exec_module(module)
    handler = getattr(module, "handler", None)
    if not callable(handler):
        raise TypeError(f"{entry} defines no `handler(request)` function")
    return handler  # type: ignore[no-any-return]


def _cap_memory(limit: int) -> None:
    """Address space = what the interpreter already maps + the function's budget, so the
    limit means the same whatever the libraries loaded.  Exceeding it raises MemoryError."""
    mapped = 0
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                mapped = int(line.split()[1]) * 1024
    except OSError:
        return
    if mapped:
        resource.setrlimit(resource.RLIMIT_AS, (mapped + limit, mapped + limit))


def as_response(result: Any) -> Response:
    if isinstance(result, Response):
        return result
    if isinstance(result, (dict, list)):
        return JSONResponse(result)
    if isinstance(result, str):
        return PlainTextResponse(result)
    if isinstance(result, (bytes, bytearray, memoryview)):
        return Response(bytes(result), media_type="application/octet-stream")
    if result is None:
        return Response(status_code=204)
    raise TypeError(f"handler returned {type(result).__name__}; expected a Response, "
                    "dict, list, str, bytes or None")  # fmt: skip


def _take_execution_id(scope: Scope) -> str | None:
    """The call's execution id, taken off the headers the function sees."""
    eid = None
    headers = []
    for k, v in scope["headers"]:
        if k == _EXECUTION_KEY:
            eid = v.decode("latin-1")
        else:
            headers.append((k, v))
    scope["headers"] = headers
    return eid


def build_app(
    handler: Handler, emitter: _Emitter, streams: list[_TaggedStream]
) -> Callable[[Scope, Receive, Send], Any]:
    is_async = inspect.iscoroutinefunction(handler)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        eid = _take_execution_id(scope)
        _execution.set(eid)  # this task's context, copied into the threadpool for sync handlers
        try:
            await _call(scope, receive, send)
        finally:
            for stream in streams:
                stream.end(eid)

    async def _call(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            if is_async:
                result = await handler(request)
            else:
                result = await run_in_threadpool(handler, request)
                if inspect.isawaitable(result):
                    result = await result
            response = as_response(result)
        except MemoryError:
            print("function exceeded its memory limit", file=sys.stderr, flush=True)
            limit_headers = {RECYCLE_HEADER: "1", "x-relay-error": "true"}
            response = JSONResponse(_WORKER_LIMIT, 546, headers=limit_headers)
        except Exception:
            # The trace goes to the request log as one message, never to the caller.
            emitter.emit(_execution.get(), "error", traceback.format_exc().rstrip())
            response = JSONResponse(_WORKER_ERROR, 500)
        try:
            await response(scope, receive, send)
        except MemoryError:
            print("function exceeded its memory limit", file=sys.stderr, flush=True)
            raise

    return app


def main(argv: list[str]) -> None:
    sock_path, entry, memory, ppid = argv
    _die_with_parent(int(ppid))
    emitter, streams = _capture_output()
    try:
        handler = _load_handler(Path(entry))
    except BaseException:
        emitter.emit(None, "error", traceback.format_exc().rstrip())
        os._exit(BOOT_FAILED)
    _cap_memory(int(memory))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tmp = f"{sock_path}.{os.getpid()}"
    sock.bind(tmp)
    sock.listen(1024)
    os.rename(tmp, sock_path)
    config = uvicorn.Config(
        build_app(handler, emitter, streams),
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
        server_header=False,
        date_header=False,
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main(sys.argv[1:])
