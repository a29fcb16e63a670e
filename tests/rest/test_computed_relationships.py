"""Computed relationships, as PostgREST has them: a function taking a table's row and returning
another table's row(s) is embedded like a foreign-key relationship — to-one when it returns one
row (`returns tbl`, `returns setof tbl rows 1`), to-many otherwise — and a function named like a
table replaces the detected relationships to that table."""

from __future__ import annotations

import pytest

from tests.rest.conftest import ALICE, BOB, Api

FUNCTIONS = """
create function public.writer(public.books) returns public.authors language sql stable as $$
  select * from public.authors where id = $1.author_id
$$;
create function public.editor(public.books) returns setof public.authors rows 1
language sql stable as $$ select * from public.authors where id = $1.editor_id $$;
create function public.written(public.authors) returns setof public.books
language sql stable as $$ select * from public.books where author_id = $1.id $$;
-- Recursive: a table to itself, both directions.
create function public.sequels(public.books) returns setof public.books
language sql stable as $$ select * from public.books where parent_id = $1.id $$;
create function public.prequel(public.books) returns setof public.books rows 1
language sql stable as $$ select * from public.books where id = $1.parent_id $$;
-- Named like the table: replaces the two (ambiguous) foreign keys from books to authors.
create function public.authors(public.books) returns setof public.authors rows 1
language sql stable as $$ select * from public.authors where id = $1.editor_id $$;
-- Runs as the caller: the notes' row level security applies.
create function public.all_notes(public.authors) returns setof public.notes
language sql stable as $$ select * from public.notes $$;
-- From a view, which has no foreign keys of its own to follow.
create view public.titles as select id, upper(title) as shout from public.books;
grant select on public.titles to anon, authenticated;
create function public.source(public.titles) returns setof public.books rows 1
language sql stable as $$ select * from public.books where id = $1.id $$;
-- Not relationships: two arguments; a function in a schema that is not exposed.
create function public.two(public.books, int) returns setof public.authors
language sql stable as $$ select * from public.authors $$;
create schema hidden;
create function hidden.ghost(public.books) returns setof public.authors
language sql stable as $$ select * from public.authors $$;
"""


@pytest.fixture(scope="module", autouse=True)
def functions(api: Api) -> None:
    api.sql(FUNCTIONS)
    api.eventually(lambda: api.get("titles?select=source(id)&limit=1").status_code == 200)


def ok(api: Api, path: str, who: str = "anon") -> object:
    r = api.get(path, who)
    assert r.status_code == 200, r.text
    return r.json()


def test_to_one_returning_a_row(api: Api) -> None:
    assert ok(api, "books?select=title,writer(name)&id=in.(1,3)&order=id") == [
        {"title": "A Wizard of Earthsea", "writer": {"name": "Ursula"}},
        {"title": "Foundation", "writer": {"name": "Isaac"}},
    ]
    # A hint does not apply to a computed relationship, as on PostgREST.
    assert ok(api, "books?select=writer!books_author_id_fkey(name)&id=eq.4") == [
        {"writer": {"name": "Octavia"}}
    ]


def test_setof_rows_1_is_to_one_and_null_when_empty(api: Api) -> None:
    assert ok(api, "books?select=id,ed:editor(name)&id=in.(1,4)&order=id") == [
        {"id": 1, "ed": {"name": "Isaac"}},
        {"id": 4, "ed": None},
    ]
    assert ok(api, "books?select=title,editor(name)&editor=is.null") == [
        {"title": "Kindred", "editor": None}
    ]


def test_to_many_with_filters_order_and_limit(api: Api) -> None:
    assert ok(api, "authors?select=name,written(title)&order=id") == [
        {"name": "Ursula", "written": [
            {"title": "A Wizard of Earthsea"}, {"title": "The Tombs of Atuan"}]},
        {"name": "Isaac", "written": [{"title": "Foundation"}]},
        {"name": "Octavia", "written": [{"title": "Kindred"}]},
    ]  # fmt: skip
    path = (
        "authors?select=name,written(title,year)&id=eq.1"
        "&written.year=gt.1960&written.order=year.desc&written.limit=1"
    )
    assert ok(api, path) == [
        {"name": "Ursula", "written": [{"title": "The Tombs of Atuan", "year": 1971}]}
    ]
    assert ok(api, "authors?select=name,written(title)&id=eq.2&written.year=gt.1960") == [
        {"name": "Isaac", "written": []}
    ]


def test_inner_join_drops_parents_without_rows(api: Api) -> None:
    path = "authors?select=name,written!inner(title)&written.year=gt.1970&order=id"
    assert ok(api, path) == [
        {"name": "Ursula", "written": [{"title": "The Tombs of Atuan"}]},
        {"name": "Octavia", "written": [{"title": "Kindred"}]},
    ]
    r = api.get(
        "authors?select=name,written!inner(title)&written.year=gt.1970", Prefer="count=exact"
    )
    assert r.headers["content-range"].endswith("/2")


def test_nested_embeds_through_computed_relationships(api: Api) -> None:
    path = "authors?select=name,written(title,writer(name),genres(label))&id=eq.2"
    assert ok(api, path) == [
        {"name": "Isaac", "written": [{
            "title": "Foundation", "writer": {"name": "Isaac"},
            "genres": [{"label": "scifi"}, {"label": "classic"}]}]}
    ]  # fmt: skip


def test_recursive_relationship_both_ways(api: Api) -> None:
    path = "books?select=id,prequel(id,title),sequels(id,sequels(id))&id=in.(1,2)&order=id"
    assert ok(api, path) == [
        {"id": 1, "prequel": None, "sequels": [{"id": 2, "sequels": []}]},
        {"id": 2, "prequel": {"id": 1, "title": "A Wizard of Earthsea"}, "sequels": []},
    ]


def test_spread_and_related_order(api: Api) -> None:
    assert ok(api, "books?select=title,...writer(author:name)&id=eq.3") == [
        {"title": "Foundation", "author": "Isaac"}
    ]
    assert ok(api, "books?select=id&order=writer(name).desc,id") == [
        {"id": 1}, {"id": 2}, {"id": 4}, {"id": 3}
    ]  # fmt: skip


def test_function_named_like_a_table_overrides_the_foreign_keys(api: Api) -> None:
    # books has two foreign keys to authors (PGRST201 without a hint); the function wins.
    assert ok(api, "books?select=id,authors(name)&id=in.(1,4)&order=id") == [
        {"id": 1, "authors": {"name": "Isaac"}},
        {"id": 4, "authors": None},
    ]
    # The other direction is untouched.
    assert ok(api, "authors?select=books!author_id(id)&id=eq.3") == [{"books": [{"id": 4}]}]


def test_from_a_view_and_from_function_results(api: Api) -> None:
    assert ok(api, "titles?select=shout,source(year)&id=eq.4") == [
        {"shout": "KINDRED", "source": {"year": 1979}}
    ]
    assert ok(api, "rpc/books_after?y=1970&select=title,writer(name)&order=year") == [
        {"title": "The Tombs of Atuan", "writer": {"name": "Ursula"}},
        {"title": "Kindred", "writer": {"name": "Octavia"}},
    ]
    r = api.request(
        "PATCH",
        "books?id=eq.3&select=title,writer(name)",
        who="service",
        json={"year": 1951},
        Prefer="return=representation",
    )
    assert r.status_code == 200, r.text
    assert r.json() == [{"title": "Foundation", "writer": {"name": "Isaac"}}]


def test_row_level_security_applies_inside_the_function(api: Api) -> None:
    path = "authors?select=id,all_notes(body)&id=eq.1&all_notes.order=body"
    assert ok(api, path, ALICE) == [
        {"id": 1, "all_notes": [{"body": "alice 1"}, {"body": "alice 2"}]}
    ]
    assert ok(api, path, BOB) == [{"id": 1, "all_notes": [{"body": "bob 1"}]}]
    assert ok(api, path) == [{"id": 1, "all_notes": []}]


@pytest.mark.parametrize("name", ["nope", "two", "ghost"])
def test_other_names_are_not_relationships(api: Api, name: str) -> None:
    r = api.get(f"books?select=id,{name}(*)")
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["code"] == "PGRST200"
    assert body["message"] == (
        f"Could not find a relationship between 'books' and '{name}' in the schema cache"
    )
