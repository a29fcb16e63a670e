"""The worker pool in-process (FunctionsRuntime without the HTTP front)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from supalite.config import FunctionsSettings
from supalite.functions.errors import FunctionsError
from supalite.functions.registry import Registry
from supalite.functions.runtime import FunctionsRuntime


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[FunctionsRuntime]:
    (tmp_path / "supabase" / "functions").mkdir(parents=True)
    rt = FunctionsRuntime(Registry(tmp_path / "supabase", {}), FunctionsSettings(), {}, tmp_path)
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()
    assert not rt.socket_dir.exists()  # stop() leaves nothing behind


def _write(rt: FunctionsRuntime, name: str, source: str, bump: int = 0) -> Path:
    folder = rt.registry.functions_dir / name
    folder.mkdir(exist_ok=True)
    main = folder / "main.py"
    main.write_text(source)
    st = main.stat()
    os.utime(main, (st.st_atime, st.st_mtime + bump))  # a distinct mtime, however fast the disk
    return main


async def _call(rt: FunctionsRuntime, name: str) -> tuple[int, bytes]:
    up = await rt.invoke(rt.lookup(name), "GET", f"/{name}", [("host", "x")], None, None)
    body = up.body if isinstance(up.body, bytes) else b"".join([c async for c in up.body])
    return up.status, body


async def test_a_function_that_fails_to_boot_is_not_restarted_until_it_changes(
    runtime: FunctionsRuntime,
) -> None:
    _write(runtime, "f", "def handler(request) return 1\n")
    for _ in range(3):
        with pytest.raises(FunctionsError) as e:
            await _call(runtime, "f")
        assert e.value.status == 503
    assert runtime.pools["f"].spawned == 0
    assert runtime.pools["f"]._seq == 1  # one process was tried, not three
    _write(runtime, "f", "def handler(request):\n    return 'fixed'\n", bump=5)
    assert await _call(runtime, "f") == (200, b"fixed")
    assert runtime.pools["f"].spawned == 1


async def test_workers_are_reused_and_stopped(runtime: FunctionsRuntime) -> None:
    _write(runtime, "g", "import os\nasync def handler(request):\n    return str(os.getpid())\n")
    pids = {(await _call(runtime, "g"))[1] for _ in range(5)}
    assert len(pids) == 1  # sequential calls: one warm worker
    assert runtime.pools["g"].spawned == 1
    worker_pids = runtime.worker_pids()
    assert [str(p).encode() for p in worker_pids] == list(pids)
    await runtime.stop()
    for pid in worker_pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
