"""One function's worker process: `python -m supalite.functions.worker SOCKET ENTRY MEMORY PPID`.

It imports the function's `main.py` (a failure there is a boot error: exit status 3 before the
socket exists), caps its own address space, then serves HTTP on a Unix socket with uvicorn, so
streamed bodies and server-sent events pass through as they are produced.  The socket is bound
under a temporary name and renamed once listening: its path appearing is the "ready" signal.

The function's `handler(request)` takes a Starlette Request and returns a Starlette Response,
or a dict/list (JSON), str (text), bytes (octet-stream) or None (204).  It may be sync or async.
"""

from __future__ import annotations

import ctypes
import inspect
import os
import resource
import signal
import socket
import sys
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


def build_app(handler: Handler) -> Callable[[Scope, Receive, Send], Any]:
    is_async = inspect.iscoroutinefunction(handler)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
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
            # The trace goes to the server log (this process's stderr), never to the caller.
            traceback.print_exc()
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
    try:
        handler = _load_handler(Path(entry))
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(BOOT_FAILED)
    _cap_memory(int(memory))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tmp = f"{sock_path}.{os.getpid()}"
    sock.bind(tmp)
    sock.listen(1024)
    os.rename(tmp, sock_path)
    config = uvicorn.Config(
        build_app(handler),
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
