"""Every function call is an entry of the request log with the function's name and an
execution id, and what the function prints (print, console.log, uncaught traces) is logged as
entries of that same execution id, capped per call."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from supalite.cli import main
from supalite.functions.output import MAX_PER_INVOCATION
from tests.functions.conftest import Served, kill_leftover_workers, serve
from tests.functions.deployed import admin

PY_CHATTY = """
import sys

async def handler(request):
    tag = request.query_params["tag"]
    print("py says", tag)
    print("py complains", tag, file=sys.stderr)
    print("no newline at the end", tag, end="")
    return {"headers": sorted(request.headers.keys())}
"""

PY_SYNC = """
def handler(request):
    print("sync handler says", request.query_params["tag"])
    return "ok"
"""

PY_RAISES = """
async def handler(request):
    print("about to fail", request.query_params["tag"])
    raise ValueError("kaboom-" + request.query_params["tag"])
"""

PY_FLOOD = """
async def handler(request):
    line = "x" * 1000
    for i in range(300):
        print(i, line)
    return "flooded"
"""

TS_CHATTY = """
Deno.serve(async (req) => {
  const tag = new URL(req.url).searchParams.get("tag")
  console.log("ts says", tag, { n: 1 })
  await new Promise((r) => setTimeout(r, 5))
  console.error("ts complains", tag)
  if (tag?.startsWith("throw")) throw new Error("ts-kaboom-" + tag)
  return Response.json({ headers: [...req.headers.keys()].sort() })
})
"""

FUNCTIONS = {
    "log-py": {"main.py": PY_CHATTY},
    "log-sync": {"main.py": PY_SYNC},
    "log-raise": {"main.py": PY_RAISES},
    "log-flood": {"main.py": PY_FLOOD},
    "log-ts": {"index.ts": TS_CHATTY},
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("function-logs")
    server = serve(base)
    for name, files in FUNCTIONS.items():  # served from the folder from the first call
        folder = base / "supabase" / "functions" / name
        folder.mkdir(parents=True)
        for filename, source in files.items():
            (folder / filename).write_text(source)
    try:
        yield Served(server, base)
    finally:
        server.stop()
        kill_leftover_workers(base)


def call(served: Served, name: str, tag: str, **headers: str) -> httpx.Response:
    return httpx.get(
        f"{served.fn_url}/{name}",
        params={"tag": tag},
        headers={**served.anon_headers(), **headers},
        timeout=30,
    )


def logs(served: Served, capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    """`supalite logs ARGS` of the project, parsed."""
    capsys.readouterr()
    assert main(["logs", "--workdir", str(served.project), *args]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def invocation(
    served: Served, capsys: pytest.CaptureFixture[str], name: str, tag: str, messages: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The request entry of the call whose output mentions `tag`, and its messages, once
    `messages` of them arrived (output reaches the log from the worker's pipe)."""
    deadline = time.monotonic() + 20
    while True:
        entries = logs(served, capsys, "--function", name)
        said = [e for e in entries if "message" in e and tag in e["message"]]
        if said:
            eid = said[0]["execution_id"]
            mine = [e for e in entries if e.get("execution_id") == eid]
            calls = [e for e in mine if "method" in e]
            output = [e for e in mine if "message" in e]
            if calls and len(output) >= messages:
                return calls[0], output
        assert time.monotonic() < deadline, f"no complete log of {name} {tag}: {entries}"
        time.sleep(0.1)


def test_python_print_and_stderr_are_logged_with_the_call(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    r = call(served, "log-py", "t1")
    assert r.status_code == 200
    # supalite's execution-id header never reaches the function.
    assert "x-supalite-execution-id" not in r.json()["headers"]
    entry, output = invocation(served, capsys, "log-py", "t1", 3)
    assert entry["service"] == "functions" and entry["function"] == "log-py"
    assert entry["path"] == "/functions/v1/log-py" and entry["status"] == 200
    assert len(entry["execution_id"]) == 36
    said = {(e["level"], e["message"]) for e in output}
    assert said == {
        ("log", "py says t1"),
        ("error", "py complains t1"),
        ("log", "no newline at the end t1"),  # the end of the call ends a partial line
    }
    assert all(e["function"] == "log-py" and e["service"] == "functions" for e in output)


def test_sync_handlers_are_attributed_too(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    assert call(served, "log-sync", "s1").status_code == 200
    assert call(served, "log-sync", "s2").status_code == 200
    one, out1 = invocation(served, capsys, "log-sync", "s1", 1)
    two, out2 = invocation(served, capsys, "log-sync", "s2", 1)
    assert one["execution_id"] != two["execution_id"]
    assert [e["message"] for e in out1] == ["sync handler says s1"]
    assert [e["message"] for e in out2] == ["sync handler says s2"]


def test_a_callers_execution_id_is_not_taken(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    forged = "00000000-0000-0000-0000-00000000beef"
    r = call(served, "log-py", "t2", **{"x-supalite-execution-id": forged})
    assert r.status_code == 200
    entry, output = invocation(served, capsys, "log-py", "t2", 3)
    assert entry["execution_id"] != forged
    assert {e["execution_id"] for e in output} == {entry["execution_id"]}


def test_an_uncaught_python_exception_is_one_error_entry(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    r = call(served, "log-raise", "r1")
    assert r.status_code == 500 and "kaboom" not in r.text
    entry, output = invocation(served, capsys, "log-raise", "r1", 2)
    assert entry["status"] == 500
    traces = [e for e in output if e["level"] == "error"]
    assert len(traces) == 1
    trace = traces[0]["message"]
    assert trace.startswith("Traceback (most recent call last):")
    assert trace.endswith("ValueError: kaboom-r1")
    assert ("log", "about to fail r1") in {(e["level"], e["message"]) for e in output}


def test_typescript_console_is_logged_with_the_call(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    r = call(served, "log-ts", "d1")
    assert r.status_code == 200, r.text
    assert "x-supalite-execution-id" not in r.json()["headers"]
    entry, output = invocation(served, capsys, "log-ts", "d1", 2)
    assert entry["function"] == "log-ts" and entry["status"] == 200
    said = {(e["level"], e["message"]) for e in output}
    # console.log formats its arguments as Deno does; the id survives the await.
    assert said == {("log", "ts says d1 { n: 1 }"), ("error", "ts complains d1")}


def test_a_typescript_exception_is_logged_as_an_error(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    r = call(served, "log-ts", "throw1")
    assert r.status_code == 500 and "ts-kaboom" not in r.text
    entry, output = invocation(served, capsys, "log-ts", "throw1", 3)
    assert entry["status"] == 500
    errors = [e["message"] for e in output if e["level"] == "error"]
    assert any(m.startswith("Error: ts-kaboom-throw1") and "at " in m for m in errors), errors


def test_output_is_capped_per_call(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    r = call(served, "log-flood", "f1")
    assert r.text == "flooded"
    deadline = time.monotonic() + 20
    while True:
        entries = logs(served, capsys, "--function", "log-flood")
        dropped = [e for e in entries if "dropped" in e.get("message", "")]
        if dropped:
            break
        assert time.monotonic() < deadline, entries
        time.sleep(0.1)
    eid = dropped[0]["execution_id"]
    output = [e for e in entries if e.get("execution_id") == eid and "message" in e]
    assert dropped[0]["level"] == "warn"
    # 300 lines of ~1 KB were printed; about 64 of them were kept.
    logged = sum(len(e["message"]) + 1 for e in output[:-1])
    assert logged <= MAX_PER_INVOCATION
    assert 50 <= len(output) - 1 < 100
    assert output[-1] is dropped[0]


def test_the_service_filter_and_the_admin_api_entries(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    with admin(served) as c:
        assert c.get("/functions").status_code == 200
    entries = logs(served, capsys, "--service", "functions")
    assert any(e.get("path") == "/admin/v1/functions" for e in entries)
    assert all(e["service"] == "functions" for e in entries)
    assert not [e for e in logs(served, capsys, "--service", "gateway") if "admin" in e["path"]]
    # --function keeps one function's calls and output only.
    only = logs(served, capsys, "--function", "log-sync")
    assert only and {e["function"] for e in only} == {"log-sync"}


def test_the_log_file_is_the_data_folders(served: Served) -> None:
    log = served.project / "supabase" / ".supalite" / "logs" / "requests.jsonl"
    assert '"function":"log-py"' in Path(log).read_text()
