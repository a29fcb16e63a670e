"""A deploy whose code does not parse is refused at deploy time with the error (file, line),
nothing is stored, and the version deployed before keeps serving."""

from __future__ import annotations

from typing import Any

import pytest

from supalite.cli import main
from tests.functions.conftest import Served
from tests.functions.deployed import admin, deploy, invoke, versioned

TS_GOOD = 'Deno.serve(() => new Response("ts-{version}"))\n'


def refused(served: Served, slug: str, files: list[dict[str, str]]) -> str:
    with admin(served) as c:
        r = c.post("/functions/deploy", params={"slug": slug}, json={"files": files})
    assert r.status_code == 400, r.text
    message: str = r.json()["message"]
    assert message.startswith("syntax error, nothing deployed: ")
    return message


def version_of(served: Served, slug: str) -> Any:
    with admin(served) as c:
        return c.get(f"/functions/{slug}").json()["version"]


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ([{"name": "main.py", "content": "async def handler(request:\n    return 1\n"}],
         "main.py at line 1"),
        ([{"name": "main.py", "content": "def handler(r):\n  return 1\n    x = 2\n"}],
         "main.py at line 3, column 4: IndentationError: unexpected indent"),
        # Every Python file counts, not only the entrypoint.
        ([{"name": "main.py", "content": "import util\nhandler = util.h\n"},
          {"name": "util.py", "content": "def h(r) return 1\n"}],
         "util.py at line 1"),
        ([{"name": "main.py", "content": "x = 1\n"},
          {"name": "../_shared/db.py", "content": "if True\n"}],
         "../_shared/db.py at line 1"),
    ],
)  # fmt: skip
def test_python_that_does_not_compile_is_refused(
    served: Served, files: list[dict[str, str]], expected: str
) -> None:
    deploy(served, "syn-py", versioned("good"), verify_jwt=False)
    before = version_of(served, "syn-py")
    assert expected in refused(served, "syn-py", files)
    assert version_of(served, "syn-py") == before
    r = invoke(served.url, served.server.anon_key, "syn-py")
    assert r.status_code == 200 and r.json()["version"] == "good"


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ([{"name": "index.ts", "content": "Deno.serve(() => new Response(\"x\"\n"}],
         "index.ts at line 1, column 30: SyntaxError: "),
        ([{"name": "index.ts", "content": "const x: number = ;\n"}],
         "index.ts at line 1, column 19: SyntaxError: Expression expected"),
        ([{"name": "index.ts", "content": 'import { a } from "../_shared/a.ts"\n'},
          {"name": "../_shared/a.ts", "content": "export const a = {\n"}],
         "../_shared/a.ts at line"),
        ([{"name": "index.tsx", "content": "const el = <div>;\n"}], "index.tsx at line 1"),
    ],
)  # fmt: skip
def test_typescript_that_does_not_parse_is_refused(
    served: Served, files: list[dict[str, str]], expected: str
) -> None:
    deploy(served, "syn-ts", [{"name": "index.ts", "content": TS_GOOD.format(version=1)}])
    before = version_of(served, "syn-ts")
    assert expected in refused(served, "syn-ts", files)
    assert version_of(served, "syn-ts") == before
    r = invoke(served.url, served.server.anon_key, "syn-ts")
    assert r.status_code == 200 and r.text == "ts-1"


def test_type_errors_are_not_syntax_errors(served: Served) -> None:
    """As on Supabase, a deploy does not type-check: code that runs is accepted."""
    source = 'const n: number = "not a number"\nDeno.serve(() => new Response(String(n)))\n'
    deploy(served, "syn-types", [{"name": "index.ts", "content": source}])
    r = invoke(served.url, served.server.anon_key, "syn-types")
    assert r.status_code == 200 and r.text == "not a number"


def test_the_cli_says_why(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    folder = served.project / "supabase" / "functions" / "syn-cli"
    folder.mkdir()
    (folder / "main.py").write_text("def handler(request):\n    return 'v1'\n")
    workdir = ["--workdir", str(served.project)]
    assert main(["functions", "deploy", "syn-cli", *workdir]) == 0
    (folder / "main.py").write_text("def handler(request)\n    return 'v2'\n")
    capsys.readouterr()
    assert main(["functions", "deploy", "syn-cli", *workdir]) == 1
    err = capsys.readouterr().err
    assert "main.py at line 1" in err and "(HTTP 400)" in err
    assert invoke(served.url, served.server.anon_key, "syn-cli").text == "v1"
