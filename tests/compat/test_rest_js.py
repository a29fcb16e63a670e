"""The Data API scenario through supabase-js (node), held to the same answers as supabase-py.

`js/scenario.mjs` runs every case of cases.py against this module's own live server, reads
first and then the write stories, and prints what the client handed back; each test here checks
one case (or one story) of that output against cases.py.  `make test-deps` installs the npm
package (`npm install` in tests/compat/js).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from tests.compat.cases import READS, STORIES, check, describe, plan
from tests.compat.conftest import HERE, Compat, node_env

JS_DIR = HERE / "js"


@pytest.fixture(scope="module")
def js_outcomes(compat: Compat) -> dict[str, Any]:
    node = shutil.which("node")
    assert node, "node is not installed; the supabase-js suite needs it"
    assert (JS_DIR / "node_modules" / "@supabase" / "supabase-js").is_dir(), (
        "@supabase/supabase-js is not installed: run `make test-deps` "
        "(or `npm install` in tests/compat/js)"
    )
    proc = subprocess.run(
        [node, "scenario.mjs"],
        cwd=JS_DIR,
        env=node_env(compat, plan()),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"scenario.mjs failed:\n{proc.stderr}"
    outcomes: dict[str, Any] = json.loads(proc.stdout)
    return outcomes


def test_supabase_js_version() -> None:
    """The installed client is a 2.x release, as the package.json asks."""
    pkg = JS_DIR / "node_modules" / "@supabase" / "supabase-js" / "package.json"
    assert pkg.is_file(), "run `make test-deps`"
    assert json.loads(pkg.read_text())["version"].startswith("2.")


@pytest.mark.parametrize("name", list(READS))
def test_read(js_outcomes: dict[str, Any], name: str) -> None:
    case = READS[name]
    outcome = js_outcomes["reads"][name]
    problems = check(outcome, case.expected("js"))
    assert not problems, f"as {case.role}: " + "; ".join(problems) + "\n" + describe(outcome)


@pytest.mark.parametrize("story", list(STORIES))
def test_story(js_outcomes: dict[str, Any], story: str) -> None:
    failures = []
    for name, case in STORIES[story]:
        outcome = js_outcomes["stories"][story][name]
        problems = check(outcome, case.expected("js"))
        if problems:
            failures.append(
                f"step {name!r} as {case.role}: " + "; ".join(problems) + "\n" + describe(outcome)
            )
    assert not failures, "\n".join(failures)
