"""Functions through supabase-js (`functions.invoke`), against a live server serving the
functions of tests/functions/functions_src.py (Python, and TypeScript run by Deno): bodies
(JSON, text, binary, FormData), methods, user context through the Data API (RLS), server-sent
events, and the error classes (FunctionsHttpError, FunctionsRelayError on
`x-relay-error: true`, FunctionsFetchError)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.compat.conftest import HERE
from tests.functions.conftest import USERS, Served, served  # noqa: F401  (the live server)

JS_DIR = HERE / "js"
CHECKS = [
    "json_round_trip", "text_body", "binary_body", "form_data", "get_method", "user_context",
    "server_sent_events", "invalid_jwt", "function_error", "not_found", "relay_error",
    "ts_json_round_trip", "ts_user_context", "ts_http_error", "fetch_error",
]  # fmt: skip


async def _seed(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("insert into notes (owner, body) values ($1, 'js-note')", USERS["alice"])
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def outcomes(served: Served, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:  # noqa: F811
    node = shutil.which("node")
    assert node, "node is not installed; the supabase-js suite needs it"
    assert (JS_DIR / "node_modules" / "@supabase" / "supabase-js").is_dir(), (
        "@supabase/supabase-js is not installed: run `make test-deps`"
    )
    asyncio.run(_seed(served.server.info["DB URL"]))
    gate_dir: Path = tmp_path_factory.mktemp("gates")
    env = {
        **served.server.env,
        "SUPABASE_URL": served.url,
        "SUPABASE_ANON_KEY": served.server.anon_key,
        "ALICE_TOKEN": served.token("alice"),
        "BOB_TOKEN": served.token("bob"),
        "GATE_DIR": str(gate_dir),
    }
    proc = subprocess.run([node, "functions.mjs"], cwd=JS_DIR, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, f"functions.mjs failed:\n{proc.stderr}\n{proc.stdout}"
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def test_suite_is_complete(outcomes: dict[str, Any]) -> None:
    assert sorted(outcomes) == sorted(CHECKS)


@pytest.mark.parametrize("name", CHECKS)
def test_check(outcomes: dict[str, Any], name: str) -> None:
    assert name in outcomes, f"functions.mjs did not run {name!r}"
    assert outcomes[name]["ok"], f"{name}: {outcomes[name]['error']}"
