"""`supalite functions deploy/delete/list` and `supalite secrets set/list/unset` against the
running server of the project folder (or another one by --url)."""

from __future__ import annotations

import hashlib

import pytest

from supalite.cli import main
from tests.functions.conftest import Served
from tests.functions.deployed import admin, invoke

SOURCE = """
import os

async def handler(request):
    return {{"edition": {edition!r}, "token": os.environ.get("CLI_TOKEN")}}
"""


def _run(served: Served, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--workdir", str(served.project)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_deploy_list_delete(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    functions = served.project / "supabase" / "functions"
    folder = functions / "clidep"
    folder.mkdir()
    (folder / "main.py").write_text(SOURCE.format(edition="first"))
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "junk.pyc").write_text("not deployed")
    (functions / "_shared").mkdir(exist_ok=True)
    (functions / "_shared" / "util.ts").write_text("export const shared = 1\n")
    anon = served.server.anon_key

    code, out, err = _run(served, capsys, "functions", "deploy", "clidep", "--no-verify-jwt")
    assert code == 0, err
    with admin(served) as c:
        stored = c.get("/functions/clidep").json()
    names = [f["name"] for f in stored["files"]]
    # The function's folder, and the shared `_*` folders beside it (this project has two).
    assert "main.py" in names and "../_shared/util.ts" in names
    assert {n.split("/")[1] for n in names if n.startswith("../")} == {"_shared", "_lib"}
    assert not any("__pycache__" in n for n in names)
    assert f"Deployed Function clidep (version 1, {len(names)} files, no verify_jwt)" in out
    assert stored["verify_jwt"] is False

    # The folder changes; the server keeps serving what was deployed until the next deploy.
    (folder / "main.py").write_text(SOURCE.format(edition="second"))
    assert invoke(served.url, anon, "clidep").json()["edition"] == "first"
    code, out, err = _run(served, capsys, "functions", "deploy", "clidep")
    assert (
        code == 0 and "version 2" in out and f"(version 2, {len(names)} files, verify_jwt)" in out
    )
    assert invoke(served.url, anon, "clidep").json()["edition"] == "second"

    (folder / "main.py").write_text(SOURCE.format(edition="local"))
    code, out, _ = _run(served, capsys, "functions", "list")
    lines = {line.split("\t")[0]: line.split("\t")[1:] for line in out.splitlines()}
    assert lines["clidep"] == [
        "python",
        "verify_jwt",
        "supabase/functions/clidep/main.py (not served: deployed v2 is)",
    ]
    assert lines["hello"][:2] == ["python", "verify_jwt"]

    code, out, _ = _run(served, capsys, "functions", "delete", "clidep")
    assert code == 0 and "Deleted Function clidep" in out
    assert invoke(served.url, anon, "clidep").json()["edition"] == "local"  # the folder again
    code, _, err = _run(served, capsys, "functions", "delete", "clidep")
    assert code == 1 and "Function clidep not found (HTTP 404)" in err


def test_deploy_errors(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(served, capsys, "functions", "deploy", "no-such-function")
    assert code == 1 and "no function 'no-such-function'" in err
    code, _, err = _run(served, capsys, "functions", "delete", "../x")
    assert code == 1 and "invalid function name" in err
    anon = served.server.anon_key
    code, _, err = _run(
        served, capsys, "functions", "list", "--url", served.url, "--service-key", anon
    )
    assert code == 0 and "service_role" in err  # the local ones are still listed
    code, _, err = _run(
        served, capsys, "secrets", "list", "--url", served.url, "--service-key", anon
    )
    assert code == 1 and "(HTTP 403)" in err


def test_secrets_set_list_unset(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    folder = served.project / "supabase" / "functions" / "clisec"
    folder.mkdir()
    (folder / "main.py").write_text(SOURCE.format(edition="s"))
    env_file = served.project / "prod.env"
    env_file.write_text('CLI_TOKEN="from the env file"\nOTHER=1\n')
    anon = served.server.anon_key

    code, out, err = _run(
        served, capsys, "secrets", "set", "--env-file", str(env_file), "EXTRA=a=b"
    )
    assert code == 0, err
    assert "CLI_TOKEN, EXTRA, OTHER" in out
    assert invoke(served.url, anon, "clisec").json()["token"] == "from the env file"

    code, out, _ = _run(served, capsys, "secrets", "list")
    assert code == 0 and "from the env file" not in out and "a=b" not in out
    rows = dict(line.split("\t") for line in out.splitlines())
    assert rows["EXTRA"] == hashlib.sha256(b"a=b").hexdigest()
    assert rows["NAME"] == "DIGEST"

    code, out, _ = _run(served, capsys, "secrets", "unset", "CLI_TOKEN", "EXTRA", "OTHER")
    assert code == 0 and "CLI_TOKEN, EXTRA, OTHER" in out
    assert invoke(served.url, anon, "clisec").json()["token"] is None

    for argv, message in (
        (["secrets", "set", "NOEQUALS"], "expected NAME=VALUE"),
        (["secrets", "set", "SUPABASE_URL=x"], "reserved"),
        (["secrets", "set", "1X=y"], "invalid secret name"),
        (["secrets", "set"], "nothing to set"),
        (["secrets", "set", "--env-file", "missing.env"], "no such file"),
    ):
        code, _, err = _run(served, capsys, *argv)
        assert code == 1 and message in err, (argv, err)
    code, out, _ = _run(served, capsys, "secrets", "list")
    assert out.splitlines() == ["NAME\tDIGEST"]
