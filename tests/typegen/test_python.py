"""The Python types: the module imports, passes mypy --strict, and its models validate the rows
the Data API really returns (and reject rows that break the schema)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from supalite.typegen.python import class_name, field_name
from tests.mcp.conftest import Project


@pytest.fixture(scope="module")
def types_module(py_source: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    path = tmp_path_factory.mktemp("pytypes") / "db_types.py"
    path.write_text(py_source)
    spec = importlib.util.spec_from_file_location("typegen_db_types", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the postponed annotations through it
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no field shadows a BaseModel attribute
            spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def rest(project: Project, method: str, path: str, **kw: Any) -> Any:
    key = project.server.service_key
    headers = {"apikey": key, "Authorization": f"Bearer {key}"}
    r = httpx.request(method, f"{project.url}/rest/v1/{path}", headers=headers, timeout=30, **kw)
    assert r.status_code == 200, r.text
    return r.json()


def test_the_module_passes_mypy_strict(py_source: str, tmp_path: Path) -> None:
    (tmp_path / "db_types.py").write_text(py_source)
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "db_types.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr


def test_table_rows_from_the_data_api_validate(project: Project, types_module: Any) -> None:
    books = rest(project, "GET", "books?select=*&order=id")
    assert len(books) == 2
    first = types_module.PublicBooks.model_validate(books[0])
    assert first.title == "First" and first.price == 12.5 and first.big == 9007199254740993
    assert first.weird_name == "w" and first.class_ == "c" and first.json_ == "j"
    assert first.meta == {"a": [1, {"b": None}]} and first.raw == [1, "x"]
    assert first.moods == ["happy", "sad"] and first.matrix == [1, 2, 3]
    assert first.address is not None and first.address.zip == 12345
    assert first.address.mood == "sad" and first.cover == b"\\x0102"
    assert str(first.published) == "2024-02-29" and first.at_time.hour == 12
    second = types_module.PublicBooks.model_validate(books[1])
    assert second.price is None and second.tags == [] and second.meta == {}
    for table, model in (("authors", "PublicAuthors"), ("profiles", "PublicProfiles")):
        for row in rest(project, "GET", f"{table}?select=*"):
            getattr(types_module, model).model_validate(row)
    # `other` is not an API schema: its rows come through the admin SQL path, as JSON too.
    key = project.server.service_key
    r = httpx.post(f"{project.url}/pg/query", json={"query": "select * from other.items"},
                   headers={"apikey": key}, timeout=30)  # fmt: skip
    assert r.status_code == 200, r.text
    assert types_module.OtherItems.model_validate(r.json()["rows"][0]).level == "high"


def test_view_and_function_results_validate(project: Project, types_module: Any) -> None:
    for view, model in (("author_stats", "PublicAuthorStats"), ("book_titles", "PublicBookTitles")):
        rows = rest(project, "GET", f"{view}?select=*")
        assert rows
        TypeAdapter(list[getattr(types_module, model)]).validate_python(rows)
    m = types_module

    def rpc(name: str, args: dict[str, Any], returns: Any) -> Any:
        return TypeAdapter(returns).validate_python(rest(project, "POST", f"rpc/{name}", json=args))

    TypeAdapter(m.PublicAddArgs).validate_python({"a": 1})
    assert rpc("add", {"a": 1}, m.PublicAddReturns) == 2
    summary = rpc("author_summary", {}, m.PublicAuthorSummaryReturns)
    assert {s.author_id for s in summary} == {1, 2}
    assert [b.title for b in rpc("books_by_author", {"author": 1}, m.PublicBooksByAuthorReturns)] \
        == ["First"]  # fmt: skip
    assert rpc("first_book", {"author": 2}, m.PublicFirstBookReturns).title == "Second"
    assert rpc("home", {}, m.PublicHomeReturns).street == "Main St"
    assert rpc("mood_list", {}, m.PublicMoodListReturns)[0] == "happy"


def test_rows_that_break_the_schema_are_rejected(project: Project, types_module: Any) -> None:
    row = rest(project, "GET", "books?select=*&id=eq.1")[0]
    for column, bad in (
        ("title", None),
        ("price", "twelve"),
        ("moods", ["angry"]),
        ("tags", "a,b"),
        ("isbn", "not-a-uuid"),
        ("address", {"zip": "x"}),
    ):
        with pytest.raises(ValidationError):
            types_module.PublicBooks.model_validate({**row, column: bad})
    missing = {k: v for k, v in row.items() if k != "author_id"}
    with pytest.raises(ValidationError):
        types_module.PublicBooks.model_validate(missing)
    with pytest.raises(ValidationError):
        TypeAdapter(types_module.PublicAuthorsInsert).validate_python({"mood": "happy"})


def test_insert_and_update_shapes(types_module: Any) -> None:
    m = types_module
    insert = TypeAdapter(m.PublicBooksInsert)
    assert insert.validate_python({"author_id": 1, "title": "t"}) == {"author_id": 1, "title": "t"}
    with pytest.raises(ValidationError):
        insert.validate_python({"author_id": 1})  # title is required
    assert TypeAdapter(m.PublicBooksUpdate).validate_python({}) == {}
    # A GENERATED ALWAYS identity may not be written: it is not part of Insert or Update.
    assert "id" not in m.PublicAuthorsInsert.__annotations__
    assert "id" in m.PublicBooksInsert.__annotations__
    assert m.PublicMood.__args__ == ("happy", "sad", 'it\'s "complicated"')
    assert m.PublicTricky.__args__ == ("back\\slash", "new\nline", '"', "*/ x")


def test_hostile_names_stay_names(types_module: Any, py_source: str) -> None:
    m = types_module
    assert not hasattr(m, "pwned") and not hasattr(m, "os")
    evil = next(
        v for k, v in vars(m).items()
        if isinstance(v, type) and issubclass(v, BaseModel) and k.startswith("PublicEPwned")
    )  # fmt: skip
    aliases = {f.alias for f in evil.model_fields.values()}
    assert aliases == {"id", 'c"}: never } //', "model_config", "model_dump_x", "1st"}
    row = evil.model_validate(
        {"id": 1, 'c"}: never } //': "x", "model_config": "y", "model_dump_x": None, "1st": 2}
    )
    assert row.model_dump(by_alias=True)["1st"] == 2
    assert "import os" not in py_source


def test_names() -> None:
    assert class_name("public", "pokemon_center") == "PublicPokemonCenter"
    assert class_name("public", "victory-road") == "PublicVictoryRoad"
    assert class_name("1x") == "T1x"
    assert field_name("Weird Name") == "weird_name"
    assert field_name("class") == "class_"
    assert field_name("model_config") == "f_model_config"
    assert field_name("model_dump_x") == "f_model_dump_x"
    assert field_name("json") == "json_"
    assert field_name("1st") == "f_1st"
    assert field_name("?!") == "field"
    assert field_name("datetime") == "datetime_"
