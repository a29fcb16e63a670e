"""Computed fields, as PostgREST has them: a function of a table's row returning one value is
selected, filtered and ordered by like a column, but is not part of `*` and cannot be
written."""

from __future__ import annotations

import pytest

from tests.rest.conftest import Api

FUNCTIONS = """
create function public.label(public.books) returns text language sql stable as $$
  select $1.title || ' (' || $1.year || ')'
$$;
create function public.age(b public.books) returns int language sql stable as $$
  select 2000 - b.year
$$;
create function public.initial(public.authors) returns text language sql immutable as $$
  select left($1.name, 1)
$$;
-- Not computed fields: two arguments, a set, a row of another table.
create function public.label2(public.books, int) returns text language sql as $$ select 'x' $$;
create function public.many(public.books) returns setof int language sql as $$ select 1 $$;
"""


@pytest.fixture(scope="module", autouse=True)
def functions(api: Api) -> None:
    api.sql(FUNCTIONS)
    api.eventually(lambda: api.get("books?select=label&limit=1").status_code == 200)


def test_select_filter_and_order_by_a_computed_field(api: Api) -> None:
    r = api.get("books?select=id,label,age&age=gt.25&order=age.desc")
    assert r.status_code == 200, r.text
    assert r.json() == [
        {"id": 3, "label": "Foundation (1951)", "age": 49},
        {"id": 1, "label": "A Wizard of Earthsea (1968)", "age": 32},
        {"id": 2, "label": "The Tombs of Atuan (1971)", "age": 29},
    ]
    r = api.get("books?select=title,author:authors!books_author_id_fkey(name,initial)&id=eq.3")
    assert r.json() == [{"title": "Foundation", "author": {"name": "Isaac", "initial": "I"}}]
    r = api.get("books?select=name:label&id=eq.1")
    assert r.json() == [{"name": "A Wizard of Earthsea (1968)"}]


def test_star_excludes_them_and_other_functions_are_not_fields(api: Api) -> None:
    row = api.get("books?id=eq.1").json()[0]
    assert "label" not in row and "age" not in row and "title" in row
    for name in ("label2", "many"):
        r = api.get(f"books?select={name}")
        assert r.status_code == 400 and r.json()["code"] == "42703", name


def test_computed_fields_cannot_be_written(api: Api) -> None:
    r = api.request(
        "PATCH", "books?id=eq.1", who="service", json={"label": "x"}, Prefer="return=minimal"
    )
    assert r.status_code == 400 and r.json()["code"] == "PGRST204"
