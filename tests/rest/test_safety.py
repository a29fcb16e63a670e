"""Hostile input: whatever the query string, headers or body, the answer is a well-formed
2xx/4xx, nothing is injected (the canary's trigger records any write), and no request acts
outside its role's grants and policies."""

from __future__ import annotations

import json
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.rest.conftest import ALICE, Api

HOSTILE = [
    "'; drop table canary; --", '"); delete from canary; --', "1 or 1=1", "$$; truncate canary; $$",
    "canary\"; delete from canary; --", "\\x00", "%00", "é\u202e", "(", ")", ",", "*", "..", "->",
    "select", "pg_sleep(5)", "1)::int; delete from canary;--", "{}", "[]", '"', "\\",
]  # fmt: skip

names = st.sampled_from(["canary", "books", "notes", "nope", "canary_log", *HOSTILE])
values = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=40))
ops = st.sampled_from(["eq", "neq", "like", "in", "is", "cs", "fts", "not.eq", "gt", "xx", ""])
keys = st.one_of(st.sampled_from(["id", "v", "select", "order", "or", "limit", "offset",
                                  "columns", "on_conflict", "and"]), st.sampled_from(HOSTILE),
                 st.text(max_size=12))  # fmt: skip


def canary_untouched(api: Api) -> None:
    r = api.get("canary?select=id,v", who="service")
    assert r.status_code == 200 and r.json() == [{"id": 1, "v": "alive"}]


def well_formed(r: object) -> None:
    status = r.status_code  # type: ignore[attr-defined]
    assert status < 500, r.text  # type: ignore[attr-defined]
    if status >= 400:
        body = r.json()  # type: ignore[attr-defined]
        assert "message" in body


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(table=names, key=keys, op=ops, value=values, method=st.sampled_from(["GET", "PATCH",
       "DELETE", "POST"]))  # fmt: skip
def test_generated_requests_never_inject(api: Api, table: str, key: str, op: str, value: str,
                                         method: str) -> None:  # fmt: skip
    qs = f"{quote(key, safe='')}={quote(op + '.' + value if op else value, safe='')}"
    body = {key: value} if method in ("PATCH", "POST") else None
    r = api.request(method, f"{quote(table, safe='')}?{qs}", json=body)
    well_formed(r)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(select=st.text(max_size=60), order=st.text(max_size=30))
def test_generated_select_and_order(api: Api, select: str, order: str) -> None:
    r = api.get(f"books?select={quote(select, safe='')}&order={quote(order, safe='')}")
    well_formed(r)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(prefer=st.text(max_size=60), accept=st.text(max_size=40), rng=st.text(max_size=20))
def test_generated_headers(api: Api, prefer: str, accept: str, rng: str) -> None:
    candidates = {"Prefer": prefer, "Accept": accept, "Range": rng}
    # Only what an HTTP client can carry at all (h11 refuses the rest before sending).
    safe = {
        k: v for k, v in candidates.items() if v.isascii() and v.isprintable() and v == v.strip()
    }
    r = api.get("books?select=id", **safe)
    well_formed(r)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)),
                         lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8),
                                                                              c, max_size=4),
                         max_leaves=12))  # fmt: skip
def test_generated_bodies(api: Api, body: object) -> None:
    r = api.request("POST", "canary", content=json.dumps(body).encode(),
                    **{"Content-Type": "application/json"})  # fmt: skip
    well_formed(r)
    canary_untouched(api)


def test_no_write_reached_the_canary(api: Api) -> None:
    r = api.get("canary_log?select=op", who="service")
    assert r.status_code == 200
    assert r.json() == []


def test_roles_cannot_escape_grants(api: Api) -> None:
    # canary_log is revoked from the API roles: no read, whatever the role claims.
    for who in ("anon", ALICE):
        r = api.get("canary_log", who=who)
        assert r.status_code in (401, 403) and r.json()["code"] == "42501"
    # A JWT naming a role the authenticator may not become.
    token = api.token(ALICE, role="postgres")
    r = api.client.get("/rest/v1/books", headers={"apikey": api.server.anon_key,
                                                  "Authorization": f"Bearer {token}"})  # fmt: skip
    assert r.status_code in (401, 403)
    token = api.token(ALICE, role="no_such_role")
    r = api.client.get("/rest/v1/books", headers={"apikey": api.server.anon_key,
                                                  "Authorization": f"Bearer {token}"})  # fmt: skip
    assert r.status_code == 401


# The request settings reach Postgres as string literals (db/request.py): quotes, backslashes
# and statement-looking text must arrive as the very values sent.
LITERAL_HOSTILE = ["it's", "\\", "\\'", "E'x'", "''", "$$; delete from canary; $$",
                   "a'); delete from canary; --", "\\'); delete from canary; --"]  # fmt: skip


def test_request_settings_arrive_verbatim(api: Api) -> None:
    api.sql(
        "create function public.echo_settings() returns json language sql stable as $$"
        " select json_build_object('header', current_setting('request.headers')::json"
        " ->> 'x-echo', 'claim', auth.jwt() ->> 'note', 'role', current_user) $$;"
        " grant execute on function public.echo_settings() to anon, authenticated"
    )
    api.eventually(lambda: api.get("rpc/echo_settings").status_code == 200)
    for value in [*LITERAL_HOSTILE, "é\u202e"]:
        headers = {"apikey": api.server.anon_key,
                   "Authorization": f"Bearer {api.token(ALICE, note=value)}"}  # fmt: skip
        if value.isascii():
            headers["x-echo"] = value
        r = api.client.get("/rest/v1/rpc/echo_settings", headers=headers)
        assert r.status_code == 200, r.text
        assert r.json() == {"header": headers.get("x-echo"), "claim": value,
                            "role": "authenticated"}  # fmt: skip
    canary_untouched(api)


def test_roles_that_are_no_role_are_refused(api: Api) -> None:
    # A NUL cannot be a literal: that role takes the bind-parameter path and Postgres refuses it.
    for role in [*LITERAL_HOSTILE, "anon\x00", "service_role\x00"]:
        bearer = f"Bearer {api.token(ALICE, role=role)}"
        r = api.client.get(
            "/rest/v1/books", headers={"apikey": api.server.anon_key, "Authorization": bearer}
        )
        assert 400 <= r.status_code < 500, (role, r.status_code, r.text)
        assert "message" in r.json()
    canary_untouched(api)
    assert api.get("books?select=id&limit=1").status_code == 200


def test_oversized_body_is_413(api: Api) -> None:
    big = b'{"v": "' + b"x" * (11 * 1024 * 1024) + b'"}'
    r = api.request("POST", "canary", content=big, **{"Content-Type": "application/json"})
    assert r.status_code == 413
    canary_untouched(api)
