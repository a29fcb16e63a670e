"""Data API RPC: named args, GET for stable functions, set-returning filters, errors."""

from __future__ import annotations

from tests.rest.conftest import ALICE, Api


def test_scalar_by_post_and_get(api: Api) -> None:
    r = api.request("POST", "rpc/add", json={"a": 1, "b": 2})
    assert r.status_code == 200 and r.json() == 3
    r = api.get("rpc/add?a=40&b=2")
    assert r.status_code == 200 and r.json() == 42


def test_setof_table_is_filterable_like_a_table(api: Api) -> None:
    r = api.request("POST", "rpc/books_after?select=title&order=year.desc&year=lt.1975",
                    json={"y": 1960})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json() == [{"title": "The Tombs of Atuan"}, {"title": "A Wizard of Earthsea"}]
    r = api.get("rpc/books_after?y=1960&select=title,authors!author_id(name)&limit=1&order=id")
    assert r.json() == [{"title": "A Wizard of Earthsea", "authors": {"name": "Ursula"}}]
    r = api.get("rpc/books_after?y=1960", Prefer="count=exact")
    assert r.headers["content-range"] == "0-2/3"


def test_json_params(api: Api) -> None:
    r = api.request("POST", "rpc/echo", json={"payload": {"k": [1, 2]}})
    assert r.json() == {"k": [1, 2]}
    r = api.request("POST", "rpc/whole", json={"any": "thing", "n": 1})
    assert r.json() == {"any": "thing", "n": 1}
    r = api.request("POST", "rpc/whole_b", json={"any": "thing", "n": 1})  # jsonb too
    assert r.json() == {"any": "thing", "n": 1}, r.text


def test_variadic(api: Api) -> None:
    assert api.request("POST", "rpc/sum_all", json={"nums": [1, 2, 3]}).json() == 6
    assert api.get("rpc/sum_all?nums=4&nums=5").json() == 9


def test_void_is_204_and_volatile_needs_post(api: Api) -> None:
    r = api.request("POST", "rpc/bump", json={"n": 1})
    assert r.status_code == 204 and r.content == b""
    r = api.get("rpc/bump?n=1")
    assert r.status_code == 405 and r.json()["code"] == "PGRST101"


def test_function_runs_as_the_caller(api: Api) -> None:
    assert api.request("POST", "rpc/whoami", json={}).json() == "nobody:anon"
    assert api.request("POST", "rpc/whoami", who=ALICE, json={}).json() == f"{ALICE}:authenticated"


def test_errors_raised_in_plpgsql(api: Api) -> None:
    r = api.request("POST", "rpc/pay", json={})
    assert r.status_code == 402
    assert r.json() == {
        "code": "PT402",
        "details": None,
        "hint": None,
        "message": "payment required",
    }
    r = api.request("POST", "rpc/fail", json={})
    assert r.status_code == 400
    assert r.json() == {"code": "P0001", "details": "d", "hint": "h", "message": "custom failure"}


def test_unknown_function_and_arguments(api: Api) -> None:
    r = api.request("POST", "rpc/nope", json={})
    assert r.status_code == 404 and r.json()["code"] == "PGRST202"
    r = api.request("POST", "rpc/add", json={"a": 1, "c": 2})
    assert r.status_code == 404 and r.json()["code"] == "PGRST202"
    assert "public.add(a, c)" in r.json()["message"]
    r = api.request("POST", "rpc/add", json={"a": "x", "b": 1})
    assert r.status_code == 400 and r.json()["code"] == "22P02"


def test_raise_pgrst_full_control(api: Api) -> None:
    api.sql(
        "create or replace function public.teapot() returns void language plpgsql as $$ begin"
        ' raise sqlstate \'PGRST\' using message = \'{"code":"T1","message":"short and stout"}\','
        ' detail = \'{"status":418,"headers":{"X-Pot":"tea"}}\'; end $$;'
    )
    api.eventually(lambda: api.request("POST", "rpc/teapot", json={}).status_code != 404)
    r = api.request("POST", "rpc/teapot", json={})
    assert r.status_code == 418 and r.headers["x-pot"] == "tea"
    assert r.json() == {"code": "T1", "details": None, "hint": None, "message": "short and stout"}


def test_response_headers_and_status_gucs(api: Api) -> None:
    api.sql(
        "create or replace function public.created() returns int language plpgsql as $$ begin"
        " perform set_config('response.status', '201', true);"
        " perform set_config('response.headers', '[{\"X-Made\": \"yes\"}]', true);"
        " return 1; end $$;"
    )
    api.eventually(lambda: api.request("POST", "rpc/created", json={}).status_code != 404)
    r = api.request("POST", "rpc/created", json={})
    assert r.status_code == 201 and r.headers["x-made"] == "yes" and r.json() == 1


def test_arguments_reach_postgres_as_sent(api: Api) -> None:
    # As PostgREST passes them: a number keeps every digit a float would lose.
    digits = "3.14159265358979323846264338327950288"
    r = api.request("POST", "rpc/whole", content=f'{{"x": {digits}}}'.encode(),
                    **{"Content-Type": "application/json"})  # fmt: skip
    assert r.status_code == 200 and digits in r.text, r.text
    r = api.request("POST", "rpc/add", content=b'{"a": NaN, "b": 1}',
                    **{"Content-Type": "application/json"})  # fmt: skip
    assert r.status_code == 400 and r.json()["code"] == "PGRST102", r.text
