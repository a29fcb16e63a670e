"""Reads rendered once per query shape (rest/shapes.py): a request answered from its shape's
template gets exactly the statement and parameters its own rendering gives."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supalite.config import ApiSettings
from supalite.db.embedded import EmbeddedPostgres
from supalite.db.schema_cache import SchemaCache, load_schema_cache
from supalite.gateway import Claims
from supalite.rest.parse import parse_prefer, split_query_string
from supalite.rest.service import RestContext, RestRequest, RestService, _Asked
from supalite.rest.shapes import ShapeCache, shape_of

SCHEMA = """
create schema if not exists shapes;
create table if not exists shapes.cats (id int primary key, name text);
create table if not exists shapes.items (
  id int primary key, name text, born date, price numeric, cat_id int references shapes.cats);
"""

# What a shape's values may be: anything a plain comparison takes as it is.
PLAIN = st.text(alphabet="abcXYZ019_-.:@+ ", min_size=1, max_size=12)

QUERIES = [
    "id=eq.{}&select=id,name",
    "name=neq.{}&price=gt.{}&order=id&limit=5",
    "born=lte.{}&name=not.eq.{}",
    "select=id,cat:cats(id,name)&cat.name=eq.{}&id=gte.{}",
    "select=id&or=(id.eq.1,id.eq.2)&name=lt.{}",
]


@pytest.fixture(scope="module")
def cache(embedded_pg: EmbeddedPostgres) -> SchemaCache:
    async def load() -> SchemaCache:
        conn = await asyncpg.connect(embedded_pg.local_url())
        try:
            await conn.execute(SCHEMA)
            return await load_schema_cache(conn, ("shapes",))
        finally:
            await conn.close()

    return asyncio.run(load())


def _service(cache: SchemaCache, shapes: ShapeCache | None) -> RestService:
    api = ApiSettings(schemas=("shapes",))
    return RestService(RestContext(None, cache, api, shapes))  # type: ignore[arg-type]


def _request(qs: str, **headers: str) -> RestRequest:
    return RestRequest(
        method="GET", resource="items", rpc=False, query_string=qs.encode(), headers=headers,
        body=b"", claims=Claims("anon", {"role": "anon"}), path="/rest/v1/items",
    )  # fmt: skip


def _asked(req: RestRequest, prefer: tuple[str, ...]) -> _Asked:
    return _Asked(req, "shapes", parse_prefer(list(prefer)), "json", None, prefer)


def _shaped(svc: RestService, req: RestRequest, prefer: tuple[str, ...] = ()) -> Any:
    return svc._shaped_read(_asked(req, prefer), split_query_string(req.query_string))


def _fresh(svc: RestService, req: RestRequest, prefer: tuple[str, ...] = ()) -> Any:
    return svc._render_items(_asked(req, prefer), split_query_string(req.query_string))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    query=st.sampled_from(QUERIES),
    first=st.lists(PLAIN, min_size=2, max_size=2),
    second=st.lists(PLAIN, min_size=2, max_size=2),
    counted=st.booleans(),
)
def test_a_template_renders_what_the_query_renders(
    cache: SchemaCache, query: str, first: list[str], second: list[str], counted: bool
) -> None:
    prefer = ("count=exact",) if counted else ()
    svc = _service(cache, ShapeCache())
    one = _request(query.format(*(quote(v) for v in first)))
    two = _request(query.format(*(quote(v) for v in second)))
    assert _shaped(svc, one, prefer) == _fresh(svc, one, prefer)  # makes the template
    assert _shaped(svc, two, prefer) == _fresh(svc, two, prefer)  # from the template


def test_the_template_is_what_answers(cache: SchemaCache, monkeypatch: pytest.MonkeyPatch) -> None:
    svc = _service(cache, ShapeCache())
    first = _shaped(svc, _request("id=eq.1&select=id"))
    assert first.params[0][0] == "1"

    def no_rendering(*args: object, **kw: object) -> None:
        raise AssertionError("rendered again")

    monkeypatch.setattr(svc, "_render_items", no_rendering)
    second = _shaped(svc, _request("id=eq.2&select=id"))
    assert second.statements == first.statements and second.params[0][0] == "2"
    with pytest.raises(AssertionError, match="rendered again"):  # another shape is rendered
        _shaped(svc, _request("id=eq.2&select=id,name"))
    svc.ctx.cache = SchemaCache(schemas=("shapes",))  # after DDL: templates start afresh
    with pytest.raises(AssertionError, match="rendered again"):
        _shaped(svc, _request("id=eq.3&select=id"))


def test_values_with_meaning_are_part_of_the_shape() -> None:
    for qs in ("id=in.(1,2)", 'name=eq."a,b"', "name=like.a*", "id=is.null", "id=eq.a(b",
               "limit=eq.5", "select=eq.5", "id=eq.\ue000"):  # fmt: skip
        shape = shape_of(split_query_string(qs))
        assert shape is None or shape.values == (), qs
    shape = shape_of(split_query_string("id=not.eq.5&b=gt.2020-01-01"))
    assert shape is not None and shape.values == ("5", "2020-01-01")


def test_limits_are_literals_so_plans_are_reused(cache: SchemaCache) -> None:
    # As a bind parameter the limit kept Postgres from ever settling on a generic plan.
    svc = _service(cache, None)
    rendered = _fresh(svc, _request("select=id&order=id&limit=5&offset=10"))
    assert " LIMIT 5 OFFSET $" in rendered.statements[0]
    assert 5 not in rendered.params[0] and 10 in rendered.params[0]
    assert " LIMIT 1000" in _fresh(svc, _request("select=id")).statements[0]  # max-rows


# Inserts: rendered once per query string, preferences and body columns; the body and the
# settings are bind parameters.
INSERT_QUERIES = ["", "select=id,name", "columns=id,name&select=id", "on_conflict=id"]
INSERT_PREFERS = [(), ("return=representation",), ("return=headers-only",),
                  ("resolution=merge-duplicates", "return=representation"),
                  ("missing=default",), ("tx=rollback",)]  # fmt: skip


def _insert(svc: RestService, qs: str, body: str, sub: str, prefer: tuple[str, ...]) -> Any:
    """`_insert_rendered`'s arguments for this request (its templates kept per query string
    and preferences, as `_shaped_insert` keeps them)."""
    claims = {"role": "authenticated", "sub": sub}
    req = RestRequest(
        method="POST", resource="items", rpc=False, query_string=qs.encode(),
        headers={"content-length": str(len(body))}, body=body.encode(),
        claims=Claims("authenticated", claims), path="/rest/v1/items",
    )  # fmt: skip
    c = svc._call(_asked(req, prefer), split_query_string(req.query_string))
    table = c.planner.table("items")
    data, cols = svc._payload(req, c.q, table, many=True)
    ctx = svc._request_context(req, "shapes", read_only=False, prefs=c.prefs)
    assert svc.ctx.shapes is not None
    by_columns = svc.ctx.shapes._templates.setdefault((qs, prefer), {})
    return c, table, ctx, data, cols, by_columns


def _fresh_insert(svc: RestService, c: Any, table: Any, ctx: Any, data: str, cols: Any) -> Any:
    again = replace(c, planner=svc._planner("shapes"))
    return svc._render_write(again, table, "create", ctx, data, cols, None)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    query=st.sampled_from(INSERT_QUERIES),
    prefer=st.sampled_from(INSERT_PREFERS),
    names=st.lists(st.text(max_size=8), min_size=2, max_size=2),
    subs=st.lists(st.sampled_from(["a", "b", "c\ue000"]), min_size=2, max_size=2),
)
def test_an_insert_template_renders_what_the_insert_renders(
    cache: SchemaCache, query: str, prefer: tuple[str, ...], names: list[str], subs: list[str]
) -> None:
    svc = _service(cache, ShapeCache())
    for name, sub in zip(names, subs, strict=True):  # the first makes the template
        c, table, ctx, data, cols, by_columns = _insert(
            svc, query, json.dumps({"id": 1, "name": name}), sub, prefer
        )
        used = svc._insert_rendered(c, table, ctx, data, cols, by_columns)
        assert used == _fresh_insert(svc, c, table, ctx, data, cols)


def test_an_insert_template_is_what_answers(
    cache: SchemaCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = _service(cache, ShapeCache())
    first = svc._insert_rendered(*_insert(svc, "", '{"id": 1, "name": "a"}', "a", ()))
    assert '[{"id": 1, "name": "a"}]' in first.params[0]

    def no_rendering(*args: object, **kw: object) -> None:
        raise AssertionError("rendered again")

    monkeypatch.setattr(svc, "_render_write", no_rendering)
    second = svc._insert_rendered(*_insert(svc, "", '{"id": 2, "name": "b"}', "b", ()))
    assert second.statements == first.statements
    assert '[{"id": 2, "name": "b"}]' in second.params[0]
    assert '{"role":"authenticated","sub":"b"}' in second.params[0]  # the caller checked
    with pytest.raises(AssertionError, match="rendered again"):  # other columns: rendered
        svc._insert_rendered(*_insert(svc, "", '{"id": 3}', "b", ()))
