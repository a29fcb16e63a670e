"""Bad deploys and bad callers: a clear 4xx, nothing stored, nothing written to disk."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.functions.conftest import Served
from tests.functions.deployed import admin, deploy, versioned

MAIN = {"name": "main.py", "content": "def handler(request):\n    return 'ok'\n"}

BAD: list[tuple[str, Any, str]] = [
    ("1abc", {"files": [MAIN]}, "invalid function name '1abc'"),
    ("a" * 129, {"files": [MAIN]}, "at most 128 characters"),
    ("ok", {"files": []}, "files is empty"),
    ("ok", {"files": "main.py"}, "files must be a list"),
    ("ok", {"files": [{"name": "main.py"}]}, "content must be a string"),
    ("ok", {"files": [{"name": "main.py", "content": 1}]}, "content must be a string"),
    ("ok", {"files": [MAIN, {"name": "/etc/passwd", "content": ""}]}, "is absolute"),
    ("ok", {"files": [MAIN, {"name": "C:x", "content": ""}]}, "is absolute"),
    ("ok", {"files": [MAIN, {"name": "../../x.py", "content": ""}]}, "leaves the function"),
    ("ok", {"files": [MAIN, {"name": "a/../../../x", "content": ""}]}, "leaves the function"),
    ("ok", {"files": [MAIN, {"name": "a\\..\\x", "content": ""}]}, "no backslashes"),
    ("ok", {"files": [MAIN, {"name": "a\x00b", "content": ""}]}, "control characters"),
    ("ok", {"files": [MAIN, {"name": "lib/", "content": ""}]}, "leaves the function"),
    ("ok", {"files": [MAIN, {"name": "x/..", "content": ""}]}, "is a folder"),
    ("ok", {"files": [MAIN, {"name": "./main.py", "content": ""}]}, "given twice"),
    ("ok", {"files": [MAIN], "entrypoint_path": "index.ts"}, "is not one of the files"),
    ("ok", {"files": [{"name": "x.txt", "content": ""}]}, "no entrypoint_path given"),
    (
        "ok",
        {"files": [{"name": "x.txt", "content": ""}], "entrypoint_path": "x.txt"},
        "must end in",
    ),
    ("ok", {"files": [MAIN], "verify_jwt": "yes"}, "verify_jwt must be true or false"),
    ("ok", {"files": [MAIN], "import_map_path": "deno.json"}, "is not one of the files"),
    ("ok", {"files": [MAIN], "bogus": 1}, "unknown field 'bogus'"),
    ("ok", ["main.py"], "must be a JSON object"),
]


def _stored(served: Served) -> list[str]:
    with admin(served) as c:
        return [f["slug"] for f in c.get("/functions").json()]


@pytest.mark.parametrize(("slug", "body", "message"), BAD)
def test_bad_deploys_are_refused(served: Served, slug: str, body: Any, message: str) -> None:
    with admin(served) as c:
        r = c.post("/functions/deploy", params={"slug": slug}, json=body)
    assert r.status_code == 400, r.text
    assert message in r.json()["message"]
    assert "ok" not in _stored(served)
    assert not (served.project / "supabase" / ".supalite" / "functions" / "ok").exists()


def test_oversized_and_malformed_bodies(served: Served) -> None:
    big = [MAIN, {"name": "blob.txt", "content": "x" * (10 * 1024 * 1024)}]
    with admin(served) as c:
        r = c.post("/functions/deploy", params={"slug": "big"}, json={"files": big})
        assert r.status_code == 413 and "larger than" in r.json()["message"]
        r = c.post(
            "/functions/deploy?slug=big",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 400 and "not JSON" in r.json()["message"]
        r = c.post("/functions/deploy?slug=big", content=b"x" * (21 * 1024 * 1024 + 70_000))
        assert r.status_code == 413
        assert c.get("/functions/..%2Fetc").status_code in (400, 404)
        assert c.get("/functions/1bad").json()["message"].startswith("invalid function name")
    assert "big" not in _stored(served)


def test_only_the_service_role_may_use_the_admin_api(served: Served) -> None:
    url = served.url + "/admin/v1"
    anon = served.server.anon_key
    user = served.token("alice")
    for method, path, body in (
        ("GET", "/functions", None),
        ("GET", "/functions/x", None),
        ("POST", "/functions/deploy?slug=x", {"files": [MAIN]}),
        ("DELETE", "/functions/x", None),
        ("GET", "/secrets", None),
        ("POST", "/secrets", [{"name": "A", "value": "b"}]),
        ("DELETE", "/secrets", ["A"]),
    ):
        r = httpx.request(method, url + path, json=body, timeout=30)
        assert r.status_code == 401, (method, path, r.text)
        for token in (anon, user):
            r = httpx.request(
                method,
                url + path,
                json=body,
                timeout=30,
                headers={"apikey": anon, "Authorization": f"Bearer {token}"},
            )
            assert r.status_code == 403, (method, path, r.text)
            assert "service_role" in r.json()["message"]
        r = httpx.request(
            method,
            url + path,
            json=body,
            timeout=30,
            headers={"Authorization": "Bearer forged.jwt.token"},
        )
        assert r.status_code == 401
    assert "x" not in _stored(served)
    # The secret key (sb_secret_…) stands for the service role.
    secret = served.server.info["Secret key"]
    with admin(served, secret) as c:
        assert c.get("/functions").status_code == 200


BAD_SECRETS: list[tuple[str, Any, str]] = [
    ("POST", [{"name": "SUPABASE_URL", "value": "x"}], "reserved"),
    ("POST", [{"name": "1X", "value": "x"}], "invalid secret name"),
    ("POST", [{"name": "A-B", "value": "x"}], "invalid secret name"),
    ("POST", [{"name": "A", "value": 1}], "value must be a string"),
    ("POST", [{"name": "A", "value": "a\x00b"}], "NUL"),
    ("POST", [{"name": "A"}], "{name, value}"),
    ("POST", {"A": "b"}, "non-empty list"),
    ("POST", [], "non-empty list"),
    ("DELETE", [], "list of 1 to"),
    ("DELETE", [1], "invalid secret name"),
]


@pytest.mark.parametrize(("method", "body", "message"), BAD_SECRETS)
def test_bad_secrets_are_refused(served: Served, method: str, body: Any, message: str) -> None:
    with admin(served) as c:
        r = c.request(method, "/secrets", json=body)
        assert r.status_code == 400, r.text
        assert message in r.json()["message"]
        assert c.get("/secrets").json() == []


def test_a_half_bad_secrets_batch_stores_nothing(served: Served) -> None:
    with admin(served) as c:
        r = c.post(
            "/secrets", json=[{"name": "GOOD", "value": "v"}, {"name": "SUPABASE_X", "value": "v"}]
        )
        assert r.status_code == 400
        assert c.get("/secrets").json() == []


def test_a_function_that_fails_to_boot_is_a_boot_error(served: Served) -> None:
    # It parses (a syntax error is refused at deploy: test_deploy_syntax.py) but cannot import.
    source = "import no_such_module_4711\n\ndef handler(request):\n    return 1\n"
    files = [{"name": "main.py", "content": source}]
    deploy(served, "broken-dep", files, verify_jwt=False)
    key = served.server.anon_key
    r = httpx.post(f"{served.fn_url}/broken-dep", headers={"apikey": key}, timeout=60)
    assert r.status_code == 503 and r.json()["code"] == "BOOT_ERROR"
    deploy(served, "broken-dep", versioned("fixed"), verify_jwt=False)
    r = httpx.post(f"{served.fn_url}/broken-dep", headers={"apikey": key}, timeout=60)
    assert r.status_code == 200 and r.json()["version"] == "fixed"
