"""A deploy's source files must parse, checked before anything is stored: a syntax error is a
400 naming the file, line and column, and the version already deployed keeps serving.

Python files are compiled (`compile()`: parsed, never run, with the interpreter the workers
use).  TypeScript and JavaScript files are parsed by Deno's own parser through `deno fmt` on
stdin, which neither type-checks nor fetches imports: Supabase's deploy bundles the function
without a type check too, so code that runs there is not refused here.  Without Deno these are
not checked (such a function answers 503 BOOT_ERROR until Deno is installed anyway).
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import re
import tempfile

from supalite.functions.deploy import AdminError, bad

_DENO_EXT = {".ts": "ts", ".tsx": "tsx", ".js": "js", ".jsx": "jsx", ".mjs": "mjs",
             ".mts": "mts", ".cts": "cts"}  # fmt: skip
_DENO_TIMEOUT = 30.0
_PARALLEL = 4
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_WHERE = re.compile(r"\s*at file://\S*_stdin\.\w+:(\d+):(\d+)\s*$", re.MULTILINE)
_MAX_DETAIL = 600


def _python(name: str, source: str) -> str | None:
    try:
        compile(source, name, "exec", dont_inherit=True)
    except SyntaxError as e:  # IndentationError and TabError are SyntaxErrors
        where = f"line {e.lineno}" + (f", column {e.offset}" if e.offset else "")
        return f"{name} at {where}: {type(e).__name__}: {e.msg}"
    except (ValueError, RecursionError, MemoryError) as e:  # null bytes; absurd nesting
        return f"{name}: cannot be compiled: {e}"
    return None


async def _deno(deno: str, name: str, source: str, workdir: str) -> str | None:
    ext = _DENO_EXT[posixpath.splitext(name)[1]]
    env = {k: os.environ[k] for k in ("PATH", "HOME", "DENO_DIR") if k in os.environ}
    env.update({"NO_COLOR": "1", "RUST_BACKTRACE": "0", "DENO_NO_UPDATE_CHECK": "1"})
    proc = await asyncio.create_subprocess_exec(
        deno, "fmt", "--no-config", f"--ext={ext}", "-",
        cwd=workdir, env=env, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with asyncio.timeout(_DENO_TIMEOUT):
            _, err = await proc.communicate(source.encode("utf-8", "surrogatepass"))
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return f"{name}: Deno did not finish parsing it within {_DENO_TIMEOUT:.0f}s"
    if proc.returncode == 0:
        return None
    text = _ANSI.sub("", err.decode("utf-8", "replace"))
    text = text.split("\nStack backtrace:", 1)[0].strip().removeprefix("error: ")
    where = _WHERE.search(text)
    detail = _WHERE.sub("", text).strip()
    if len(detail) > _MAX_DETAIL:
        detail = detail[:_MAX_DETAIL] + "…"
    at = f" at line {where.group(1)}, column {where.group(2)}" if where else ""
    return f"{name}{at}: {detail}"


async def check(files: dict[str, str], deno: str | None) -> None:
    """Raise a 400 AdminError naming the first file (in name order) that does not parse."""
    problems: dict[str, str] = {}
    python = {n: src for n, src in files.items() if n.endswith(".py")}
    for name in sorted(python):
        # Compiling megabytes takes a while: off the event loop.
        problem = await asyncio.to_thread(_python, name, python[name])
        if problem is not None:
            problems[name] = problem
            break
    scripts = sorted(n for n in files if posixpath.splitext(n)[1] in _DENO_EXT)
    if deno is not None and scripts:
        limit = asyncio.Semaphore(_PARALLEL)
        with tempfile.TemporaryDirectory(prefix="supalite-check-") as workdir:

            async def one(name: str) -> None:
                async with limit:
                    try:
                        problem = await _deno(deno, name, files[name], workdir)
                    except OSError as e:
                        raise AdminError(503, f"cannot run Deno to check {name}: {e}") from e
                if problem is not None:
                    problems[name] = problem

            await asyncio.gather(*(one(n) for n in scripts))
    if problems:
        raise bad("syntax error, nothing deployed: " + problems[min(problems)])
