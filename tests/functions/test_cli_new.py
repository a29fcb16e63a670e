"""`supalite functions new`: the templates work as written, CORS and auth included."""

from __future__ import annotations

import uuid

import httpx
import pytest

from supalite.cli import main
from tests.functions.conftest import Served


def _signup(served: Served) -> tuple[str, str]:
    email = f"fn-{uuid.uuid4().hex[:8]}@example.com"
    with httpx.Client(timeout=30) as c:
        r = c.post(served.url + "/auth/v1/signup", headers={"apikey": served.server.anon_key},
                   json={"email": email, "password": "correct-horse-battery"})  # fmt: skip
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return email, token


@pytest.mark.parametrize("lang", ["python", "typescript"])
def test_new_function_template_works(served: Served, lang: str) -> None:
    name = f"greet-{lang}"
    assert main(["functions", "new", name, "--lang", lang, "--workdir", str(served.project)]) == 0
    entry = "main.py" if lang == "python" else "index.ts"
    assert (served.project / "supabase" / "functions" / name / entry).is_file()
    assert f"[functions.{name}]" in (served.project / "supabase" / "config.toml").read_text()
    url = f"{served.fn_url}/{name}"
    with httpx.Client(timeout=60) as c:
        preflight = {
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, apikey",
        }
        r = c.options(url, headers=preflight)
        assert r.status_code == 200
        assert "apikey" in r.headers["access-control-allow-headers"]
        assert r.headers["access-control-allow-origin"] == "*"
        r = c.post(url, json={"name": "Functions"})
        assert r.status_code == 401  # verify_jwt is on
        r = c.post(url, json={"name": "Functions"}, headers=served.anon_headers())
        assert r.status_code == 200, r.text
        assert r.json() == {"message": "Hello Functions!", "user": None}
        email, token = _signup(served)
        r = c.post(url, json={}, headers={"apikey": served.server.anon_key,
                                          "Authorization": f"Bearer {token}"})  # fmt: skip
        assert r.status_code == 200, r.text
        assert r.json() == {"message": "Hello world!", "user": email}


def test_new_refuses_bad_or_taken_names(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    workdir = ["--workdir", str(served.project)]
    assert main(["functions", "new", "1bad", *workdir]) == 1
    assert "invalid function name" in capsys.readouterr().err
    assert main(["functions", "new", "hello", *workdir]) == 1
    assert "already exists" in capsys.readouterr().err


def test_list(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["functions", "list", "--workdir", str(served.project)]) == 0
    out = capsys.readouterr().out
    lines = {line.split("\t")[0]: line.split("\t")[1:3] for line in out.splitlines()}
    assert lines["hello"] == ["python", "verify_jwt"]
    assert lines["echo"] == ["python", "no verify_jwt"]
    assert lines["ts-hello"] == ["typescript", "verify_jwt"]
    assert "hidden" not in lines  # enabled = false
