"""Deployed functions: stored in the database, served by the running server, versioned."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import psutil

from tests.functions.conftest import Served
from tests.functions.deployed import admin, deploy, invoke, sql, versioned


def test_deploy_invoke_redeploy_delete(served: Served) -> None:
    anon = served.server.anon_key
    first = deploy(served, "dep", versioned("one"), verify_jwt=False)
    assert first["slug"] == "dep" and first["version"] == 1 and first["status"] == "ACTIVE"
    assert first["entrypoint_path"] == "main.py" and first["verify_jwt"] is False
    r = invoke(served.url, anon, "dep")
    assert r.status_code == 200, r.text
    one = r.json()
    assert one["version"] == "one"
    # The worker runs real files, written under the data folder for this version.
    data_dir = served.project / "supabase" / ".supalite" / "functions" / "dep"
    assert Path(one["cwd"]).is_relative_to(data_dir)
    assert Path(one["cwd"], "main.py").read_text() == versioned("one")[0]["content"]

    second = deploy(served, "dep", versioned("two"), verify_jwt=False)
    assert second["version"] == 2 and second["id"] == first["id"]
    assert second["created_at"] == first["created_at"] <= second["updated_at"]
    two = invoke(served.url, anon, "dep").json()
    assert two["version"] == "two"
    assert two["pid"] != one["pid"] and two["cwd"] != one["cwd"]  # a new worker, new files

    with admin(served) as c:
        listed = c.get("/functions").json()
        got = c.get("/functions/dep").json()
        assert c.delete("/functions/dep").status_code == 200
        assert c.get("/functions/dep").status_code == 404
        again = c.delete("/functions/dep")
    assert [f["version"] for f in listed if f["slug"] == "dep"] == [2]
    assert got["files"] == versioned("two") and got["version"] == 2
    assert again.status_code == 404 and again.json() == {"message": "Function dep not found"}
    r = invoke(served.url, anon, "dep")
    assert r.status_code == 404 and r.text == "Function not found"
    assert _stops(one["pid"]) and _stops(two["pid"])  # retired, then stopped


def _stops(pid: int) -> bool:
    try:
        psutil.Process(pid).wait(10)
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:
        return False
    return True


def test_verify_jwt_is_the_deployed_setting(served: Served) -> None:
    deploy(served, "guarded", versioned("g"))  # verify_jwt defaults to true, as on Supabase
    r = invoke(served.url, "not-a-jwt", "guarded")
    assert r.status_code == 401 and r.json() == {"msg": "Invalid JWT"}
    assert invoke(served.url, served.server.anon_key, "guarded").status_code == 200


def test_a_deployed_function_shadows_the_local_folder(served: Served) -> None:
    anon = served.server.anon_key
    local = invoke(served.url, anon, "hello").json()
    assert "method" in local  # the folder's hello (functions_src.HELLO)
    deploy(served, "hello", versioned("deployed"), verify_jwt=False)
    assert invoke(served.url, anon, "hello").json()["version"] == "deployed"
    with admin(served) as c:
        assert c.delete("/functions/hello").status_code == 200
    assert "method" in invoke(served.url, anon, "hello").json()


def test_shared_code_beside_the_function(served: Served) -> None:
    """Supabase's `../_shared/` layout: the version's own tree holds it."""
    files = [
        {"name": "index.ts", "content": TS_MAIN},
        {"name": "../_shared/greet.ts", "content": TS_SHARED},
        {"name": "lib/./twice.ts", "content": TS_TWICE},
    ]
    out = deploy(served, "ts-shared", files, verify_jwt=False, entrypoint_path="./index.ts")
    assert out["entrypoint_path"] == "index.ts"
    r = invoke(served.url, served.server.anon_key, "ts-shared")
    assert r.status_code == 200, served.log()[-2000:]
    assert r.json() == {"greeting": "hello, shared", "twice": 42}
    with admin(served) as c:
        names = [f["name"] for f in c.get("/functions/ts-shared").json()["files"]]
    assert names == ["../_shared/greet.ts", "index.ts", "lib/twice.ts"]


TS_SHARED = "export function greet(who: string): string { return `hello, ${who}` }\n"
TS_TWICE = "export const twice = (n: number): number => n * 2\n"
TS_MAIN = """
import { greet } from "../_shared/greet.ts"
import { twice } from "./lib/twice.ts"

Deno.serve(() => Response.json({ greeting: greet("shared"), twice: twice(21) }))
"""


def test_secrets_reach_functions_and_never_come_back(served: Served) -> None:
    anon = served.server.anon_key
    value = "pa55-w0rd-" + "x" * 20
    deploy(served, "sec", versioned("s"), verify_jwt=False)
    before = invoke(served.url, anon, "sec").json()
    assert before["secret"] is None and before["dotenv"] == "s3cr3t-value"  # .env as before
    with admin(served) as c:
        r = c.post(
            "/secrets",
            json=[
                {"name": "DEPLOY_SECRET", "value": value},
                {"name": "MY_SECRET", "value": "from-the-db"},
            ],
        )
        assert r.status_code == 201, r.text
        listed = c.get("/secrets")
    after = invoke(served.url, anon, "sec").json()
    assert after["secret"] == value and after["dotenv"] == "from-the-db"  # db wins over .env
    assert after["pid"] != before["pid"]  # new secrets, new workers
    assert value not in listed.text and "from-the-db" not in listed.text
    digests = {s["name"]: s["value"] for s in listed.json()}
    assert digests["DEPLOY_SECRET"] == hashlib.sha256(value.encode()).hexdigest()
    # Encrypted at rest: the table holds neither value.
    dump = json.dumps(sql(served, "select * from _supalite.function_secrets"), default=str)
    assert value not in dump and "from-the-db" not in dump
    with admin(served) as c:
        r = c.request("DELETE", "/secrets", json=["DEPLOY_SECRET", "MY_SECRET", "NOPE"])
        assert r.json() == {"removed": ["DEPLOY_SECRET", "MY_SECRET"]}
    gone = invoke(served.url, anon, "sec").json()
    assert gone["secret"] is None and gone["dotenv"] == "s3cr3t-value"
