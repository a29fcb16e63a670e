"""Data API writes over HTTP: insert, bulk, upsert, update, delete, PUT, preferences, RLS."""

from __future__ import annotations

import pytest

from tests.rest.conftest import ALICE, BOB, Api


@pytest.fixture(autouse=True)
def scratch(api: Api) -> None:
    api.sql(
        "drop table if exists public.items cascade;"
        "create table public.items (id int primary key, name text not null unique,"
        " qty int not null default 1, note text);"
        "insert into public.items values (1, 'one', 1, null), (2, 'two', 2, 'x');"
        "notify pgrst, 'reload schema'"
    )
    api.eventually(lambda: api.get("items?select=id,name,qty,note&limit=1").status_code == 200)


def rows(api: Api) -> list[dict[str, object]]:
    return api.get("items?order=id", who="service").json()  # type: ignore[no-any-return]


def test_insert_minimal_is_201_empty(api: Api) -> None:
    r = api.request("POST", "items", json={"id": 3, "name": "three"})
    assert r.status_code == 201 and r.content == b""
    assert r.headers["content-range"] == "*/*"
    assert rows(api)[-1] == {"id": 3, "name": "three", "qty": 1, "note": None}  # default applied


def test_insert_representation_with_select(api: Api) -> None:
    r = api.request("POST", "items?select=id,name", json={"id": 3, "name": "three"},
                    Prefer="return=representation")  # fmt: skip
    assert r.status_code == 201
    assert r.json() == [{"id": 3, "name": "three"}]
    assert r.headers["preference-applied"] == "return=representation"


def test_bulk_insert_and_columns(api: Api) -> None:
    body = [{"id": 3, "name": "a", "qty": 5}, {"id": 4, "name": "b"}]
    # A key missing from a row is NULL (here: a not-null violation) unless missing=default.
    r = api.request("POST", "items", json=body, Prefer="return=representation")
    assert r.status_code == 400 and r.json()["code"] == "23502"
    r = api.request(
        "POST", "items", json=body, Prefer="return=representation,count=exact,missing=default"
    )
    assert r.status_code == 201, r.text
    assert [x["qty"] for x in r.json()] == [5, 1]
    assert r.headers["content-range"] == "*/2"
    assert "missing=default" in r.headers["preference-applied"]
    r = api.request("POST", 'items?columns="id","name"', json=[{"id": 5, "name": "c", "qty": 9}],
                    Prefer="return=representation")  # fmt: skip
    assert r.json()[0]["qty"] == 1  # qty not in columns: the default


def test_insert_missing_key_in_bulk_is_null(api: Api) -> None:
    body = [{"id": 3, "name": "a", "note": "n"}, {"id": 4, "name": "b"}]
    r = api.request("POST", "items", json=body, Prefer="return=representation")
    assert [x["note"] for x in r.json()] == ["n", None]


def test_headers_only_location(api: Api) -> None:
    r = api.request("POST", "items", json={"id": 7, "name": "seven"}, Prefer="return=headers-only")
    assert r.status_code == 201 and r.content == b"", r.text
    assert r.headers["location"] == "/items?id=eq.7"


def test_unique_violation_is_409_and_nothing_written(api: Api) -> None:
    r = api.request("POST", "items", json=[{"id": 8, "name": "eight"}, {"id": 9, "name": "one"}])
    assert r.status_code == 409
    body = r.json()
    assert body["code"] == "23505"
    assert "items_name_key" in body["message"]
    assert "Key (name)=(one) already exists." in body["details"]
    assert [x["id"] for x in rows(api)] == [1, 2]  # the first row is gone too


def test_not_null_and_bad_type_are_400(api: Api) -> None:
    r = api.request("POST", "items", json={"id": 3})
    assert r.status_code == 400 and r.json()["code"] == "23502"
    r = api.request("POST", "items", json={"id": "three", "name": "x"})
    assert r.status_code == 400 and r.json()["code"] == "22P02"


def test_unknown_column_is_pgrst204(api: Api) -> None:
    r = api.request("POST", "items", json={"id": 3, "name": "x", "nope": 1})
    assert r.status_code == 400
    assert r.json()["code"] == "PGRST204"
    assert r.json()["message"] == "Could not find the 'nope' column of 'items' in the schema cache"


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"a string"', b"", b"[[{}]]"])
def test_bad_bodies_are_400(api: Api, body: bytes) -> None:
    r = api.request("POST", "items", content=body, **{"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "PGRST102"
    assert [x["id"] for x in rows(api)] == [1, 2]


def test_upsert_merge_and_ignore(api: Api) -> None:
    body = [{"id": 1, "name": "uno", "qty": 10}, {"id": 3, "name": "tres", "qty": 3}]
    r = api.request("POST", "items", json=body,
                    Prefer="resolution=merge-duplicates,return=representation")  # fmt: skip
    assert r.status_code in (200, 201)
    assert r.headers["preference-applied"] == "resolution=merge-duplicates, return=representation"
    assert [(x["id"], x["name"], x["qty"]) for x in rows(api)] == [
        (1, "uno", 10), (2, "two", 2), (3, "tres", 3)
    ]  # fmt: skip
    r = api.request("POST", "items", json={"id": 2, "name": "dos"},
                    Prefer="resolution=ignore-duplicates")  # fmt: skip
    assert r.status_code == 201
    assert rows(api)[1]["name"] == "two"
    r = api.request("POST", "items?on_conflict=name", json={"id": 99, "name": "two", "qty": 7},
                    Prefer="resolution=merge-duplicates")  # fmt: skip
    assert r.status_code in (200, 201)
    assert [(x["id"], x["qty"]) for x in rows(api) if x["name"] == "two"] == [(99, 7)]


def test_update_with_filters(api: Api) -> None:
    r = api.request("PATCH", "items?id=eq.2", json={"qty": 20})
    assert r.status_code == 204
    assert rows(api)[1]["qty"] == 20
    r = api.request("PATCH", "items?id=gte.1&select=id,qty", json={"note": "all"},
                    Prefer="return=representation,count=exact")  # fmt: skip
    assert r.status_code == 200
    assert sorted(x["id"] for x in r.json()) == [1, 2]
    assert r.headers["content-range"] == "0-1/2"
    r = api.request("PATCH", "items?id=eq.999", json={"qty": 1}, Prefer="return=representation")
    assert r.status_code == 200 and r.json() == []


def test_delete(api: Api) -> None:
    r = api.request("DELETE", "items?id=eq.1", Prefer="return=representation")
    assert r.status_code == 200 and r.json()[0]["name"] == "one"
    r = api.request("DELETE", "items?id=eq.2")
    assert r.status_code == 204
    assert rows(api) == []


def test_max_affected_strict(api: Api) -> None:
    r = api.request("DELETE", "items?id=gt.0", Prefer="handling=strict, max-affected=1")
    assert r.status_code == 400
    assert r.json()["code"] == "PGRST124"
    assert r.json()["details"] == "The query affects 2 rows"
    assert len(rows(api)) == 2  # rolled back
    r = api.request("DELETE", "items?id=gt.0", Prefer="max-affected=1")  # lenient: ignored
    assert r.status_code == 204 and rows(api) == []


def test_strict_handling_rejects_unknown_preferences(api: Api) -> None:
    r = api.request("POST", "items", json={"id": 3, "name": "x"},
                    Prefer="handling=strict, foo=bar")  # fmt: skip
    assert r.status_code == 400
    assert r.json()["code"] == "PGRST122"
    assert r.json()["details"] == "Invalid preferences: foo=bar"


def test_tx_rollback(api: Api) -> None:
    r = api.request("POST", "items", json={"id": 3, "name": "x"},
                    Prefer="tx=rollback,return=representation")  # fmt: skip
    assert r.status_code == 201 and r.json()[0]["id"] == 3
    assert len(rows(api)) == 2


def test_put_single_row_upsert(api: Api) -> None:
    body = {"id": 5, "name": "five", "qty": 5, "note": None}
    r = api.request("PUT", "items?id=eq.5", json=body, Prefer="return=representation")
    assert r.status_code == 200 and r.json() == [body]
    r = api.request("PUT", "items?id=eq.5", json={**body, "qty": 6})
    assert r.status_code == 204 and rows(api)[-1]["qty"] == 6
    r = api.request("PUT", "items?id=eq.6", json=body)
    assert r.status_code == 400 and r.json()["code"] == "PGRST115"
    r = api.request("PUT", "items?id=eq.5", json={"id": 5, "name": "partial"})
    assert r.status_code == 405 and r.json()["code"] == "PGRST105"


def test_get_is_read_only(api: Api) -> None:
    api.sql(
        "create or replace function public.sneaky() returns int language plpgsql volatile as"
        " $$ begin delete from public.items; return 1; end $$;"
    )
    api.eventually(lambda: api.get("rpc/sneaky", who="service").json().get("code") != "PGRST202")
    r = api.client.get("/rest/v1/rpc/sneaky", headers=api.headers(who="service"))
    assert r.status_code == 405
    assert len(rows(api)) == 2


def test_rls_on_writes(api: Api) -> None:
    r = api.request("POST", "notes", who=ALICE, json={"body": "alice new"},
                    Prefer="return=representation")  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()[0]["owner"] == ALICE  # default auth.uid()
    r = api.request("POST", "notes", who=ALICE, json={"body": "forged", "owner": BOB})
    assert r.status_code == 403
    assert r.json()["code"] == "42501"
    assert "row-level security" in r.json()["message"]
    r = api.request("POST", "notes", json={"body": "anon"})
    assert r.status_code == 401 and r.json()["code"] == "42501"
    # Bob cannot touch Alice's notes: the filter sees none of them.
    r = api.request("PATCH", "notes?body=eq.alice 1", who=BOB, json={"body": "hijacked"},
                    Prefer="return=representation")  # fmt: skip
    assert r.status_code == 200 and r.json() == []
    r = api.request("DELETE", "notes?body=like.alice*", who=BOB, Prefer="count=exact")
    assert r.status_code == 204 and r.headers["content-range"] == "*/0"
    assert [n["body"] for n in api.get("notes?select=body&order=id", who=ALICE).json()][:2] == [
        "alice 1", "alice 2"
    ]  # fmt: skip


def test_a_not_null_domain_left_out_takes_its_default(api: Api) -> None:
    """Only the columns sent are built from the body, as PostgREST does (json_to_recordset
    with their types): a whole row of the table type would check every domain, and a NOT NULL
    domain's column left out would be NULL there, refused before its default could apply."""
    api.sql(
        "drop table if exists public.tagged; drop domain if exists public.tag;"
        "create domain public.tag as text not null default 'untagged';"
        "create table public.tagged (id int primary key, label public.tag, n int);"
        "grant all on public.tagged to anon;"
        "notify pgrst, 'reload schema'"
    )
    api.eventually(lambda: api.get("tagged?select=id,label,n").status_code == 200)
    r = api.request("POST", "tagged?select=id,label,n", json=[{"id": 1, "n": 5}],
                    Prefer="return=representation")  # fmt: skip
    assert (r.status_code, r.json()) == (201, [{"id": 1, "label": "untagged", "n": 5}])
    r = api.request("POST", "tagged?select=id,label", json={"id": 2, "label": "red"},
                    Prefer="return=representation,missing=default")  # fmt: skip
    assert (r.status_code, r.json()) == (201, [{"id": 2, "label": "red"}])
    r = api.request("PATCH", "tagged?id=eq.1&select=id,label,n", json={"n": 6},
                    Prefer="return=representation")  # fmt: skip
    assert (r.status_code, r.json()) == (200, [{"id": 1, "label": "untagged", "n": 6}])
    r = api.request("POST", "tagged", json={"id": 3, "label": None})
    assert (r.status_code, r.json()["code"]) == (400, "23502")  # sent as null: refused


def test_a_statement_trigger_sees_each_insert_s_own_request(api: Api) -> None:
    # A BEFORE statement trigger runs before an insert reads its body (where an insert by the
    # connection's last caller sets its request's settings): such a table's inserts set their
    # settings first, so the trigger never sees the previous request's.
    api.sql(
        "drop table if exists public.seen;"
        "create table public.seen (at serial, path text, n text);"
        "create or replace function public.note_request() returns trigger"
        " language plpgsql as $$ begin insert into public.seen (path, n)"
        " values (current_setting('request.path', true),"
        "  current_setting('request.headers', true)::json ->> 'x-n'); return null; end $$;"
        "create trigger note before insert on public.items for each statement"
        " execute function public.note_request();"
        "notify pgrst, 'reload schema'"
    )
    api.eventually(lambda: api.get("seen?limit=1").status_code == 200)
    for n in range(3, 7):
        r = api.request("POST", "items", json={"id": n, "name": f"n{n}"}, **{"x-n": str(n)})
        assert r.status_code == 201, r.text
    seen = api.get("seen?order=at", who="service").json()
    assert [(s["path"], s["n"]) for s in seen] == [("/rest/v1/items", str(n)) for n in range(3, 7)]


def test_numbers_reach_postgres_as_sent(api: Api) -> None:
    # The body is passed to Postgres as sent, as PostgREST does: no digit is lost to a float.
    api.sql(
        "drop table if exists public.exact; create table public.exact (id int primary key,"
        " x numeric(40, 30), big numeric); notify pgrst, 'reload schema'"
    )
    api.eventually(lambda: api.get("exact?limit=1").status_code == 200)
    body = b'{"id": 1, "x": 3.141592653589793238462643383279, "big": 1e400}'
    r = api.request("POST", "exact", content=body, **{"Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    r = api.request("PUT", "exact?id=eq.2", content=body.replace(b'"id": 1', b'"id": 2'),
                    **{"Content-Type": "application/json"})  # fmt: skip
    assert r.status_code == 204, r.text
    got = api.get("exact?select=x::text,big::text&order=id", who="service").json()
    assert got == [{"x": "3.141592653589793238462643383279", "big": "1" + "0" * 400}] * 2


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_json_constants_are_pgrst102(api: Api, constant: bytes) -> None:
    r = api.request("POST", "items", content=b'{"id": 9, "name": "n", "qty": ' + constant + b"}",
                    **{"Content-Type": "application/json"})  # fmt: skip
    assert r.status_code == 400 and r.json()["code"] == "PGRST102", r.text
    assert [x["id"] for x in rows(api)] == [1, 2]
