"""Embedding through views, as PostgREST does: a view that shows a foreign key's columns
unchanged (renamed or not, through other views, over tables in a private schema) takes its
table's place on either side of the relationship."""

from __future__ import annotations

import pytest

from tests.rest.conftest import Api

VIEWS = """
create view public.book_list as
  select b.id, b.title as name, b.author_id as writer, upper(b.title) as shout
  from public.books b;
create view public.writers as select a.id as writer_id, a.name from public.authors a;
create view public.book_titles as select id, name, writer from public.book_list where id < 4;
create view public.no_keys as select b.id, b.title from public.books b;
create schema private;
create table private.shelves (id int primary key, label text not null);
create table private.shelf_books (
  shelf_id int references private.shelves (id),
  book_id int references public.books (id),
  primary key (shelf_id, book_id));
insert into private.shelves values (1, 'top');
insert into private.shelf_books values (1, 1), (1, 3);
create view public.shelf_items as
  select s.shelf_id as shelf, s.book_id from private.shelf_books s;
grant select on public.book_list, public.writers, public.book_titles, public.no_keys,
  public.shelf_items to anon;
"""


@pytest.fixture(scope="module", autouse=True)
def views(api: Api) -> None:
    api.sql(VIEWS)
    api.eventually(lambda: api.get("shelf_items?select=shelf,books(id)").status_code == 200)


def test_view_to_table_many_to_one(api: Api) -> None:
    # The view shows only author_id of the two keys to authors: no hint needed.
    r = api.get("book_list?select=id,name,authors(name)&id=eq.1")
    assert r.status_code == 200, r.text
    assert r.json() == [{"id": 1, "name": "A Wizard of Earthsea", "authors": {"name": "Ursula"}}]
    # The relationship keeps its constraint's name for hints, as PostgREST's does.
    r = api.get("book_list?select=id,name,authors!books_author_id_fkey(name)&id=eq.1")
    assert r.status_code == 200, r.text
    assert r.json() == [{"id": 1, "name": "A Wizard of Earthsea", "authors": {"name": "Ursula"}}]


def test_table_to_view_one_to_many_and_view_to_view(api: Api) -> None:
    r = api.get("authors?select=name,book_list!books_author_id_fkey(id)&id=eq.1&book_list.order=id")
    assert r.status_code == 200, r.text
    assert r.json() == [{"name": "Ursula", "book_list": [{"id": 1}, {"id": 2}]}]
    r = api.get("writers?select=name,book_titles!books_author_id_fkey(name)&writer_id=eq.2")
    assert r.status_code == 200, r.text
    assert r.json() == [{"name": "Isaac", "book_titles": [{"name": "Foundation"}]}]
    r = api.get("book_titles?select=id,writers!books_author_id_fkey(name)&id=eq.3")
    assert r.json() == [{"id": 3, "writers": {"name": "Isaac"}}]


def test_view_over_a_private_table(api: Api) -> None:
    r = api.get("shelf_items?select=shelf,books(title)&order=book_id")
    assert r.status_code == 200, r.text
    assert r.json() == [
        {"shelf": 1, "books": {"title": "A Wizard of Earthsea"}},
        {"shelf": 1, "books": {"title": "Foundation"}},
    ]


def test_a_view_without_the_key_has_no_relationship(api: Api) -> None:
    r = api.get("no_keys?select=id,authors(name)")
    assert r.status_code == 400 and r.json()["code"] == "PGRST200"
    # A view of authors' key is the target of both keys from books: ambiguous without a hint.
    r = api.get("writers?select=name,books(title)")
    assert r.status_code == 300 and r.json()["code"] == "PGRST201"
    r = api.get(
        "writers?select=name,books!books_editor_id_fkey(title)&writer_id=eq.2&books.order=id"
    )
    assert r.status_code == 200, r.text
    assert r.json() == [{"name": "Isaac", "books": [{"title": "A Wizard of Earthsea"},
                                                    {"title": "The Tombs of Atuan"}]}]  # fmt: skip
