"""`Accept: application/vnd.pgrst.plan`: the EXPLAIN of the statement a request would run
(PostgREST's `db-plan-enabled`), against a live supalite with the setting on."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from supalite.config import load_settings
from tests.rest.conftest import ALICE, SCHEMA, Api, project_with, serving

PLAN_JSON = "application/vnd.pgrst.plan+json"
JS_DIR = Path(__file__).parents[1] / "compat" / "js"  # where supabase-js is installed


@pytest.fixture(scope="module")
def plan_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    project = project_with(tmp_path_factory.mktemp("restplan"), SCHEMA.read_text())
    cfg = project / "supabase" / "config.toml"
    text = cfg.read_text()
    assert "\n[api]\n" in text
    cfg.write_text(text.replace("\n[api]\n", "\n[api]\ndb_plan_enabled = true\n", 1))
    yield from serving(project)


def test_setting_from_config_toml_and_env(plan_api: Api, tmp_path: Path) -> None:
    project = plan_api.server.project
    assert load_settings(project, env={}).api.db_plan_enabled is True
    assert load_settings(tmp_path, env={}).api.db_plan_enabled is False  # PostgREST's default
    env = {"PGRST_DB_PLAN_ENABLED": "true"}
    assert load_settings(tmp_path, env=env).api.db_plan_enabled is True
    assert (
        load_settings(project, env={"PGRST_DB_PLAN_ENABLED": "false"}).api.db_plan_enabled is False
    )


def _plan(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body, list) and len(body) == 1
    plan: dict[str, Any] = body[0]["Plan"]
    return plan


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _scan(plan: dict[str, Any], relation: str) -> dict[str, Any]:
    found = [
        n for n in _nodes(plan) if n.get("Relation Name") == relation and "Scan" in n["Node Type"]
    ]
    assert found, plan
    return found[0]


def _count(api: Api, path: str) -> int:
    r = api.get(path, "service", Prefer="count=exact")
    assert r.status_code in (200, 206), r.text
    return int(r.headers["Content-Range"].split("/")[1])


def test_read_plan_json(plan_api: Api) -> None:
    r = plan_api.get("books?select=id,title", Accept=PLAN_JSON)
    plan = _plan(r)
    assert r.headers["content-type"] == (
        'application/vnd.pgrst.plan+json; for="application/json"; charset=utf-8'
    )
    assert plan["Node Type"] == "Aggregate"  # json_agg over the rows, as PostgREST's
    assert _scan(plan, "books")["Node Type"] in ("Seq Scan", "Index Scan", "Index Only Scan")
    assert "Actual Total Time" not in plan  # no analyze: nothing ran


def test_read_plan_text_is_the_default_format(plan_api: Api) -> None:
    r = plan_api.get("books", Accept="application/vnd.pgrst.plan")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == (
        'application/vnd.pgrst.plan+text; for="application/json"; charset=utf-8'
    )
    assert r.text.startswith("Aggregate")
    assert "on books" in r.text and "cost=" in r.text
    r = plan_api.get("books", Accept="application/vnd.pgrst.plan+text; options=verbose")
    assert r.headers["content-type"].startswith(
        'application/vnd.pgrst.plan+text; for="application/json"; options=verbose;'
    )
    assert "Output:" in r.text


def test_analyze_runs_the_statement(plan_api: Api) -> None:
    r = plan_api.get("books", Accept=f"{PLAN_JSON}; options=analyze|buffers")
    plan = _plan(r)
    assert r.headers["content-type"] == (
        'application/vnd.pgrst.plan+json; for="application/json"; options=analyze|buffers; '
        "charset=utf-8"
    )
    assert "Actual Total Time" in plan and "Shared Hit Blocks" in plan
    assert _scan(plan, "books")["Actual Rows"] == 4


def test_filter_is_in_the_plan_as_a_bound_value(plan_api: Api) -> None:
    plan = _plan(plan_api.get("books?year=gt.1960", Accept=f"{PLAN_JSON}; options=analyze"))
    scan = _scan(plan, "books")
    assert "year" in scan["Filter"] and "1960" in scan["Filter"]
    assert scan["Actual Rows"] == 3
    # A hostile value stays a value: it is planned as a literal and nothing else runs.
    evil = "x') or (1=1"
    plan = _plan(plan_api.get(f"books?title=eq.{evil}", Accept=PLAN_JSON))
    assert _scan(plan, "books")["Filter"] == "(title = 'x'') or (1=1'::text)"
    assert _count(plan_api, "books") == 4


def test_rls_applies_to_the_plan(plan_api: Api) -> None:
    accept = f"{PLAN_JSON}; options=analyze"
    alice = _scan(_plan(plan_api.get("notes", ALICE, Accept=accept)), "notes")
    assert "request.jwt.claim" in alice["Filter"]  # the policy's auth.uid(), inlined
    assert alice["Actual Rows"] == 2
    service = _scan(_plan(plan_api.get("notes", "service", Accept=accept)), "notes")
    assert "Filter" not in service and service["Actual Rows"] == 3  # service_role bypasses RLS
    # anon has no policy on notes: the planner knows it reads nothing.
    anon = _plan(plan_api.get("notes", Accept=accept))
    assert all(
        n.get("Actual Rows", 0) == 0 for n in _nodes(anon) if n.get("Node Type") != "Aggregate"
    )


def test_for_other_representations(plan_api: Api) -> None:
    r = plan_api.get("books?id=eq.1", Accept=f'{PLAN_JSON}; for="application/vnd.pgrst.object"')
    _plan(r)
    assert r.headers["content-type"] == (
        'application/vnd.pgrst.plan+json; for="application/vnd.pgrst.object+json"; charset=utf-8'
    )
    # No singular check: a plan is not the object, whatever the row count.
    r = plan_api.get("books", Accept=f'{PLAN_JSON}; for="application/vnd.pgrst.object"')
    assert r.status_code == 200, r.text
    r = plan_api.get("books", Accept=f'{PLAN_JSON}; for="text/csv"')
    _plan(r)
    assert 'for="text/csv"' in r.headers["content-type"]


def test_head_and_profile(plan_api: Api) -> None:
    r = plan_api.request("HEAD", "books", Accept=PLAN_JSON)
    assert r.status_code == 200 and r.content == b""
    assert r.headers["content-type"].startswith(PLAN_JSON)


def test_write_plans_do_not_write_without_analyze(plan_api: Api) -> None:
    accept = {"Accept": PLAN_JSON}
    r = plan_api.request("POST", "genres", "service", json={"id": 100, "label": "plan"}, **accept)
    assert _plan(r)["Plans"][0]["Operation"] == "Insert"
    r = plan_api.request("PATCH", "books?id=eq.1", "service", json={"year": 1}, **accept)
    assert any(n.get("Operation") == "Update" for n in _nodes(_plan(r)))
    r = plan_api.request("DELETE", "genres?id=eq.1", "service", **accept)
    assert any(n.get("Operation") == "Delete" for n in _nodes(_plan(r)))
    r = plan_api.request(
        "PUT", "genres?id=eq.101", "service", json={"id": 101, "label": "put"}, **accept
    )
    assert any(n.get("Operation") == "Insert" for n in _nodes(_plan(r)))
    assert _count(plan_api, "genres?id=in.(1,100,101)") == 1
    assert plan_api.get("books?id=eq.1&select=year", "service").json() == [{"year": 1968}]


def test_analyze_commits_a_write_unless_tx_rollback(plan_api: Api) -> None:
    # PostgREST: "akin to the EXPLAIN command, the changes will be committed when using the
    # analyze option"; Prefer: tx=rollback keeps nothing.
    accept = f"{PLAN_JSON}; options=analyze"
    body = {"id": 200, "label": "analyzed"}
    r = plan_api.request(
        "POST", "genres", "service", json=body, Accept=accept, Prefer="tx=rollback"
    )
    assert _plan(r)["Plans"][0]["Actual Rows"] == 1
    assert _count(plan_api, "genres?id=eq.200") == 0
    r = plan_api.request("POST", "genres", "service", json=body, Accept=accept)
    assert "Actual Total Time" in _plan(r)
    assert _count(plan_api, "genres?id=eq.200") == 1


def test_write_plan_under_rls(plan_api: Api) -> None:
    # Bob's update of Alice's notes is planned with the policy: it touches none of them.
    r = plan_api.request(
        "PATCH",
        "notes?body=like.alice*",
        "22222222-2222-2222-2222-222222222222",
        json={"body": "x"},
        Accept=f"{PLAN_JSON}; options=analyze",
        Prefer="tx=rollback",
    )
    scan = _scan(_plan(r), "notes")
    assert "request.jwt.claim" in scan["Filter"]  # the policy's auth.uid(), inlined
    assert scan["Actual Rows"] == 0


def test_rpc_plan(plan_api: Api) -> None:
    r = plan_api.get("rpc/books_after?y=1960", Accept=f"{PLAN_JSON}; options=analyze")
    plan = _plan(r)
    assert "Actual Total Time" in plan
    r = plan_api.request("POST", "rpc/add", json={"a": 1, "b": 2}, Accept=PLAN_JSON)
    _plan(r)
    # A volatile function is not run by a plain plan.
    r = plan_api.request("POST", "rpc/fail", Accept=PLAN_JSON)
    _plan(r)


def test_unknown_options_are_ignored_as_postgrest_does(plan_api: Api) -> None:
    r = plan_api.get("books", Accept=f"{PLAN_JSON}; options=bogus|verbose")
    _plan(r)
    assert r.headers["content-type"] == (
        'application/vnd.pgrst.plan+json; for="application/json"; options=verbose; charset=utf-8'
    )


def test_unsupported_for_media_is_406(plan_api: Api) -> None:
    r = plan_api.get("books", Accept=f'{PLAN_JSON}; for="text/xml"')
    assert r.status_code == 406
    assert r.json()["code"] == "PGRST107"
    assert r.json()["message"] == (
        'None of these media types are available: application/vnd.pgrst.plan+json; for="text/xml"'
    )


def test_disabled_by_default_is_406(api: Api) -> None:
    for method, path in (("GET", "books"), ("GET", "rpc/add?a=1&b=2"), ("DELETE", "genres")):
        r = api.request(method, path, "service", Accept="application/vnd.pgrst.plan")
        assert r.status_code == 406, r.text
        assert r.json()["code"] == "PGRST107"
        assert r.json()["message"] == (
            "None of these media types are available: "
            'application/vnd.pgrst.plan+text; for="application/json"'
        )
    assert _count(api, "genres") == 3  # the refused DELETE did nothing
    # As on PostgREST, a later acceptable entry is served instead.
    r = api.get("books?id=eq.1&select=id", Accept=f"{PLAN_JSON}, application/json")
    assert r.status_code == 200 and r.json() == [{"id": 1}]


# supabase-js's `.explain()` builds the Accept header itself (`…; for="…"; options=a|b;`).
_EXPLAIN_JS = """
import { createClient } from '@supabase/supabase-js'
import ws from 'ws'
// Node < 22 has no global WebSocket; supabase-js then needs one for its realtime client.
const db = createClient(process.env.URL, process.env.KEY,
  globalThis.WebSocket ? {} : { realtime: { transport: ws } })
const out = {}
out.json = await db.from('books').select('id,title').gt('year', 1960)
  .explain({ analyze: true, verbose: true, format: 'json' })
out.text = await db.from('books').select().explain()
out.single = await db.from('books').select().eq('id', 1).single().explain({ format: 'json' })
out.rpc = await db.rpc('add', { a: 1, b: 2 }).explain({ format: 'json' })
out.insert = await db.from('genres').insert({ id: 300, label: 'js' }).explain({ format: 'json' })
console.log(JSON.stringify(out))
"""


def test_supabase_js_explain(plan_api: Api) -> None:
    node = shutil.which("node")
    assert node, "node is not installed; the supabase-js check needs it"
    assert (JS_DIR / "node_modules" / "@supabase" / "supabase-js").is_dir(), "run `make test-deps`"
    env = {"URL": plan_api.server.url, "KEY": plan_api.server.service_key, "PATH": ""}
    proc = subprocess.run(
        [node, "--input-type=module", "-e", _EXPLAIN_JS],
        cwd=JS_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    for name, res in out.items():
        assert res["error"] is None and res["status"] == 200, (name, res)
    scan = _scan(out["json"]["data"][0]["Plan"], "books")
    assert "1960" in scan["Filter"] and scan["Actual Rows"] == 3 and "Output" in scan
    assert isinstance(out["text"]["data"], str) and out["text"]["data"].startswith("Aggregate")
    assert "Plan" in out["single"]["data"][0]
    assert "Plan" in out["rpc"]["data"][0]
    assert out["insert"]["data"][0]["Plan"]["Plans"][0]["Operation"] == "Insert"
    assert _count(plan_api, "genres?id=eq.300") == 0  # a plan without analyze writes nothing
