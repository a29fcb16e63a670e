"""Data API reads over HTTP: select grammar, embeds, filters, order, ranges, counts, media."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest

from tests.rest.conftest import ALICE, BOB, Api


def titles(r: object) -> list[str]:
    return [row["title"] for row in r.json()]  # type: ignore[attr-defined]


def test_select_columns_alias_cast_and_json_paths(api: Api) -> None:
    r = api.get("books?select=id,name:title,price::text,lang:meta->>lang,meta->pages&id=eq.1")
    assert r.status_code == 200
    assert r.json() == [{"id": 1, "name": "A Wizard of Earthsea", "price": "9.99",
                         "lang": "en", "pages": 183}]  # fmt: skip
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    assert r.headers["content-range"] == "0-0/*"


def test_star_is_every_column(api: Api) -> None:
    row = api.get("authors?id=eq.1").json()[0]
    assert row == {"id": 1, "name": "Ursula", "born": "1929-10-21"}


def test_embeds_to_one_to_many_many_to_many(api: Api) -> None:
    r = api.get(
        "authors?select=name,books!books_author_id_fkey(title,genres(label))&id=eq.1&books.order=id"
    )
    assert r.status_code == 200, r.text
    assert r.json() == [{"name": "Ursula", "books": [
        {"title": "A Wizard of Earthsea", "genres": [{"label": "fantasy"}, {"label": "classic"}]},
        {"title": "The Tombs of Atuan", "genres": [{"label": "fantasy"}]},
    ]}]  # fmt: skip
    r = api.get("books?select=title,author:authors!author_id(name)&id=eq.3")
    assert r.json() == [{"title": "Foundation", "author": {"name": "Isaac"}}]


def test_ambiguous_embed_is_300_with_hints(api: Api) -> None:
    r = api.get("books?select=title,authors(name)")
    assert r.status_code == 300
    body = r.json()
    assert body["code"] == "PGRST201"
    assert body["message"] == (
        "Could not embed because more than one relationship was found for 'books' and 'authors'"
    )
    assert {d["relationship"].split(" ")[0] for d in body["details"]} == {
        "books_author_id_fkey", "books_editor_id_fkey"
    }  # fmt: skip
    assert "'authors!books_author_id_fkey'" in body["hint"]


def test_unknown_relationship_is_400(api: Api) -> None:
    r = api.get("books?select=title,publishers(name)")
    assert r.status_code == 400 and r.json()["code"] == "PGRST200"
    assert "'books' and 'publishers'" in r.json()["message"]


def test_self_reference_and_spread(api: Api) -> None:
    r = api.get(
        "books?select=title,parent:parent_id(title),sequels:books!parent_id(id)&id=lt.3&order=id"
    )
    assert r.json() == [
        {"title": "A Wizard of Earthsea", "parent": None, "sequels": [{"id": 2}]},
        {"title": "The Tombs of Atuan", "parent": {"title": "A Wizard of Earthsea"}, "sequels": []},
    ]
    r = api.get("books?select=title,...authors!author_id(author:name)&id=eq.4")
    assert r.json() == [{"title": "Kindred", "author": "Octavia"}]


def test_inner_embed_and_embed_filters(api: Api) -> None:
    r = api.get("books?select=title,genres!inner(label)&genres.label=eq.scifi")
    assert r.json() == [{"title": "Foundation", "genres": [{"label": "scifi"}]}]
    # Without !inner the embed is filtered but the parents stay.
    r = api.get("books?select=id,genres(label)&genres.label=eq.scifi&order=id")
    assert [len(b["genres"]) for b in r.json()] == [0, 0, 1, 0]
    # Null filtering on an embed: anti-join and its opposite.
    r = api.get("books?select=id,genres(id)&genres=is.null&order=id")
    assert [b["id"] for b in r.json()] == [4]
    r = api.get("books?select=id,genres()&genres=not.is.null&order=id")
    assert [b["id"] for b in r.json()] == [1, 2, 3]


def test_empty_embed_and_embed_limit_order(api: Api) -> None:
    r = api.get("authors?select=name,books!books_author_id_fkey(title)&books.order=year.desc"
                "&books.limit=1&id=eq.1")  # fmt: skip
    assert r.json() == [{"name": "Ursula", "books": [{"title": "The Tombs of Atuan"}]}]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("year=eq.1968", [1]),
        ("year=neq.1968", [2, 3, 4]),
        ("year=gt.1968", [2, 4]),
        ("year=gte.1971", [2, 4]),
        ("year=lt.1968", [3]),
        ("year=lte.1968", [1, 3]),
        ("title=like.*of*", [1, 2]),
        ("title=ilike.*FOUND*", [3]),
        ("title=match.^The", [2]),
        ("title=imatch.^the", [2]),
        ("id=in.(1,3)", [1, 3]),
        ('title=in.("Kindred","Foundation")', [3, 4]),
        ("price=is.null", [4]),
        ("price=not.is.null", [1, 2, 3]),
        ("editor_id=isdistinct.2", [3, 4]),
        ("body=fts.wizard", [1]),
        ("body=plfts(english).tombs atuan", [2]),
        ("body=phfts.the tombs", [2]),
        ("body=wfts.wizard or foundation", [1, 3]),
        ("tags=cs.{classic}", [1, 3]),
        ("tags=cd.{fantasy,classic,extra}", [1, 2]),
        ("tags=ov.{scifi,nothing}", [3]),
        ('meta=cs.{"lang":"en"}', [1, 2, 3]),
        ("meta->>lang=eq.en&meta->pages=gt.180", [1, 3]),
        ("title=like(any).{*Wizard*,Kindred}", [1, 4]),
        ("year=gt(all).{1950,1960}", [1, 2, 4]),
        ("year=not.in.(1968,1971)", [3, 4]),
        ("or=(year.lt.1960,title.eq.Kindred)", [3, 4]),
        ("and=(year.gt.1960,or(price.is.null,price.gt.9))", [1, 4]),
        ("not.or=(year.lt.1960,year.gt.1975)", [1, 2]),
        ("or=(id.eq.1,and(year.gt.1970,price.not.is.null))", [1, 2]),
    ],
)
def test_horizontal_filters(api: Api, query: str, expected: list[int]) -> None:
    r = api.get(f"books?select=id&order=id&{query}")
    assert r.status_code == 200, r.text
    assert [b["id"] for b in r.json()] == expected


def test_order_variants(api: Api) -> None:
    assert [b["id"] for b in api.get("books?select=id&order=price.desc.nullslast").json()] == [
        3, 1, 2, 4
    ]  # fmt: skip
    assert [b["id"] for b in api.get("books?select=id&order=price.asc.nullsfirst").json()] == [
        4, 2, 1, 3
    ]  # fmt: skip
    r = api.get("book_genres?select=book_id,genre_id&order=genres(label).desc,book_id")
    assert r.status_code == 200, r.text
    assert [(g["book_id"], g["genre_id"]) for g in r.json()] == [
        (3, 2),
        (1, 1),
        (2, 1),
        (1, 3),
        (3, 3),
    ]
    r = api.get("books?select=id&order=authors(name)")  # two FKs to authors: ambiguous
    assert r.status_code == 300 and r.json()["code"] == "PGRST201"
    by_pages = api.get("books?select=id&order=meta->pages.desc.nullslast").json()
    assert [b["id"] for b in by_pages] == [3, 1, 2, 4]


def test_limit_offset_range_and_counts(api: Api) -> None:
    r = api.get("books?select=id&order=id&limit=2&offset=1", Prefer="count=exact")
    assert r.status_code == 206
    assert r.headers["content-range"] == "1-2/4"
    assert [b["id"] for b in r.json()] == [2, 3]
    r = api.get("books?select=id&order=id", Range="0-1", **{"Range-Unit": "items"})
    assert r.status_code == 200 and r.headers["content-range"] == "0-1/*"
    assert len(r.json()) == 2
    r = api.get("books?select=id&order=id&offset=10", Prefer="count=exact")
    assert r.status_code == 416 and r.json()["code"] == "PGRST103"
    r = api.get("books?select=id&id=eq.999", Prefer="count=exact")
    assert r.status_code == 200 and r.headers["content-range"] == "*/0" and r.json() == []
    r = api.get("books?select=id", Prefer="count=exact")
    assert r.status_code == 200 and r.headers["content-range"] == "0-3/4"


def test_planned_and_estimated_counts(api: Api) -> None:
    """count=planned is the planner's row estimate for the filtered rows; count=estimated is
    exact up to max-rows (1000 here, Supabase's default), past it the larger of that and the
    planner's.  The statistics are made stale on purpose, so estimates and truth differ."""
    api.sql(
        "create table public.counted (n int primary key, tag text)"
        " with (autovacuum_enabled = false);"
        " insert into public.counted select g, 'a' from generate_series(1, 5000) g;"
        " analyze public.counted;"
        " update public.counted set tag = 'b' where n <= 2500;"
        " grant select on public.counted to anon"
    )
    api.eventually(lambda: api.get("counted?limit=1").status_code == 200)

    def planner(where: str) -> int:
        async def run() -> int:
            conn = await asyncpg.connect(api.server.info["DB URL"])
            try:
                plan = await conn.fetchval(
                    f"explain (format json) select 1 from public.counted {where}"
                )
            finally:
                await conn.close()
            return int(json.loads(plan)[0]["Plan"]["Plan Rows"])

        return asyncio.run(run())

    def total(query: str, count: str) -> str:
        r = api.get(f"counted?select=n&{query}", Prefer=f"count={count}", Range="0-9")
        assert r.status_code in (200, 206), r.text
        return r.headers["content-range"].split("/")[1]

    stale = planner("where tag = 'b'")
    assert stale < 1000  # the statistics say there are no 'b' rows; there are 2500
    assert total("tag=eq.b", "exact") == "2500"
    assert total("tag=eq.b", "planned") == str(stale)
    assert total("tag=eq.b", "estimated") == "1001"  # past max-rows, the planner says less
    assert total("n=lt.100", "estimated") == "99"  # under max-rows: exact
    assert total("n=lte.1000", "estimated") == "1000"
    assert total("tag=eq.a", "estimated") == str(max(1001, planner("where tag = 'a'")))
    r = api.get("counted?select=n&limit=2", Prefer="count=planned")
    assert r.status_code == 206 and r.headers["content-range"] == f"0-1/{planner('')}"


def test_head_has_headers_no_body(api: Api) -> None:
    r = api.client.head("/rest/v1/books", headers=api.headers(Prefer="count=exact"))
    assert r.status_code == 200 and r.content == b""
    assert r.headers["content-range"] == "0-3/4"


def test_single_object(api: Api) -> None:
    accept = "application/vnd.pgrst.object+json"
    r = api.get("authors?id=eq.2&select=name", Accept=accept)
    assert r.status_code == 200 and r.json() == {"name": "Isaac"}
    r = api.get("authors?select=name", Accept=accept)
    assert r.status_code == 406
    assert r.json() == {"code": "PGRST116", "details": "The result contains 3 rows", "hint": None,
                        "message": "Cannot coerce the result to a single JSON object"}  # fmt: skip
    r = api.get("authors?id=eq.99", Accept=accept)
    assert r.status_code == 406 and r.json()["details"] == "The result contains 0 rows"


def test_csv(api: Api) -> None:
    r = api.get("authors?select=id,name&order=id", Accept="text/csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.text == "id,name\n1,Ursula\n2,Isaac\n3,Octavia"  # PostgREST: no final newline
    r = api.get("books?select=id,title,price&id=in.(1,4)&order=id", Accept="text/csv")
    assert r.text == 'id,title,price\n1,"A Wizard of Earthsea",9.99\n4,Kindred,'


def test_aggregates(api: Api) -> None:
    r = api.get("books?select=author_id,count(),price.sum()&order=author_id&author_id=lt.3")
    assert r.status_code == 200, r.text
    assert r.json() == [{"author_id": 1, "count": 2, "sum": 18.49},
                        {"author_id": 2, "count": 1, "sum": 12.00}]  # fmt: skip
    assert api.get("books?select=count()").json() == [{"count": 4}]


def test_rls_decides_reads(api: Api) -> None:
    assert api.get("notes?select=body").json() == []
    alice = [n["body"] for n in api.get("notes?select=body&order=id", who=ALICE).json()]
    assert alice == ["alice 1", "alice 2"]
    assert [n["body"] for n in api.get("notes?select=body", who=BOB).json()] == ["bob 1"]
    assert len(api.get("notes", who="service").json()) == 3


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("nope", 404, "PGRST205"),
        ("books?select=nope", 400, "42703"),
        ("books?nope=eq.1", 400, "42703"),
        ("books?id=xx.1", 400, "PGRST100"),
        ("books?select=id,", 400, "PGRST100"),
        ("books?id=eq.abc", 400, "22P02"),
        ("books?order=nope.asc", 400, "42703"),
        ("books?select=id::nosuchtype", 400, "42704"),
        ("books?genres.label=eq.x", 400, "PGRST108"),
        ("books?select=id,genres(id)&genres=eq.1", 400, "PGRST120"),
        ("books?select=id&order=book_genres(book_id)", 400, "PGRST118"),
    ],
)
def test_read_errors(api: Api, query: str, status: int, code: str) -> None:
    r = api.get(query)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code and set(body) == {"code", "message", "details", "hint"}


def test_profiles(api: Api) -> None:
    r = api.get("books?select=id", **{"Accept-Profile": "private"})
    assert r.status_code == 406
    assert r.json()["code"] == "PGRST106"
    assert r.json()["message"] == "The schema must be one of the following: public, graphql_public"
    r = api.get("books?select=id&id=eq.1", **{"Accept-Profile": "public"})
    assert r.status_code == 200 and r.headers["content-profile"] == "public"


def test_unknown_accept_is_406(api: Api) -> None:
    r = api.get("books", Accept="application/xml")
    assert r.status_code == 406 and r.json()["code"] == "PGRST107"


def test_options_allow(api: Api) -> None:
    r = api.client.options("/rest/v1/books", headers=api.headers())
    assert r.status_code == 200
    assert r.headers["allow"] == "OPTIONS,GET,HEAD,POST,PUT,PATCH,DELETE"


def test_unsupported_method_and_unknown_paths(api: Api) -> None:
    r = api.client.request("TRACE", "/rest/v1/books", headers=api.headers())
    assert (r.status_code, r.json()["code"]) == (405, "PGRST117")
    assert r.json()["message"] == "Unsupported HTTP method: TRACE"
    r = api.client.request("PATCH", "/rest/v1/rpc/anything", headers=api.headers())
    assert (r.status_code, r.json()["code"]) == (405, "PGRST101")
    # Below a table or a function there is nothing: the gateway's 404.
    r = api.client.get("/rest/v1/books/1", headers=api.headers())
    assert r.status_code == 404 and r.json() == {"message": "no Route matched with those values"}
    assert api.client.post("/rest/v1/", headers=api.headers()).status_code == 405


def test_schema_cache_reloads_after_ddl(api: Api) -> None:
    assert api.get("late").status_code == 404
    api.sql("create table public.late (id int primary key); insert into public.late values (1)")
    api.eventually(lambda: api.get("late").status_code != 404)
    assert api.get("late").json() == [{"id": 1}]
    api.sql("alter table public.late add column label text default 'x'")
    api.eventually(lambda: "label" in api.get("late").json()[0])
    assert api.get("late?select=label").json() == [{"label": "x"}]


def test_max_rows_caps_reads(api: Api) -> None:
    api.sql("create table public.many (id int primary key);"
            "insert into public.many select generate_series(1, 1500)")  # fmt: skip
    api.eventually(lambda: api.get("many?limit=1").status_code != 404)
    r = api.get("many?select=id", Prefer="count=exact")
    assert len(r.json()) == 1000  # [api] max_rows
    assert r.status_code == 206 and r.headers["content-range"] == "0-999/1500"
