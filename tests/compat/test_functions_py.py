"""Functions through supabase-py's `functions.invoke`, against a live server serving the
functions of tests/functions/functions_src.py (Python, and TypeScript run by Deno)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from supabase import Client, create_client
from supabase_functions.errors import FunctionsHttpError, FunctionsRelayError

from tests.functions.conftest import Served, served  # noqa: F401  (the live server)


@pytest.fixture
def client(served: Served) -> Iterator[Client]:  # noqa: F811
    yield create_client(served.url, served.server.anon_key)


def test_json_round_trip(client: Client) -> None:
    data = client.functions.invoke(
        "hello?lang=py",
        {"body": {"name": "py"}, "headers": {"x-custom": "c"}, "responseType": "json"},
    )
    assert isinstance(data, dict)
    assert data["method"] == "POST"
    assert data["json"] == {"name": "py"}
    assert data["query"] == {"lang": "py"}
    assert data["custom"] == "c"
    assert data["path"] == "/hello"


def test_text_and_binary_bodies(client: Client) -> None:
    assert client.functions.invoke("echo", {"body": "plain text"}) == b"plain text"
    blob = bytes(range(256))
    assert client.functions.invoke("echo", {"body": blob}) == blob


def test_other_methods(client: Client) -> None:
    data = client.functions.invoke("hello", {"method": "GET", "responseType": "json"})
    assert isinstance(data, dict) and data["method"] == "GET"


def test_user_context_reaches_the_data_api(served: Served, client: Client) -> None:  # noqa: F811
    import asyncio

    import asyncpg

    from tests.functions.conftest import USERS

    async def seed() -> None:
        conn = await asyncpg.connect(served.server.info["DB URL"])
        try:
            await conn.execute("insert into notes (owner, body) values ($1, 'py-note')",
                               USERS["bob"])  # fmt: skip
        finally:
            await conn.close()

    asyncio.run(seed())
    client.functions.set_auth(served.token("bob"))
    data = client.functions.invoke("notes", {"method": "GET", "responseType": "json"})
    assert isinstance(data, dict)
    assert [r["body"] for r in data["rows"]] == ["py-note"]
    client.functions.set_auth(served.token("alice"))
    data = client.functions.invoke("notes", {"method": "GET", "responseType": "json"})
    assert isinstance(data, dict) and data["rows"] == []


def test_invalid_jwt_is_an_http_error(client: Client) -> None:
    client.functions.set_auth("not-a-jwt")
    with pytest.raises(FunctionsHttpError) as e:
        client.functions.invoke("hello", {"body": {}})
    assert e.value.status == 401


def test_function_error_is_an_http_error(client: Client) -> None:
    with pytest.raises(FunctionsHttpError) as e:
        client.functions.invoke("boom", {"body": {}})
    assert e.value.status == 500
    with pytest.raises(FunctionsHttpError) as e:
        client.functions.invoke("echo?status=418", {"body": "x"})
    assert e.value.status == 418


def test_unknown_function_is_an_http_error(client: Client) -> None:
    with pytest.raises(FunctionsHttpError) as e:
        client.functions.invoke("does-not-exist", {"body": {}})
    assert e.value.status == 404


def test_relay_errors(client: Client) -> None:
    with pytest.raises(FunctionsRelayError) as e:
        client.functions.invoke("crash?crash=1", {"body": {}})
    assert e.value.status == 500
    with pytest.raises(FunctionsRelayError) as e:
        client.functions.invoke("hog?hog=1", {"body": {}})
    assert e.value.status == 546
    assert client.functions.invoke("crash", {"responseType": "json"})  # a fresh worker


def test_typescript_function(client: Client) -> None:
    data = client.functions.invoke("ts-hello", {"body": {"name": "py"}, "responseType": "json"})
    assert isinstance(data, dict)
    assert data["json"] == {"name": "py"} and data["method"] == "POST"
    with pytest.raises(FunctionsHttpError) as e:
        client.functions.invoke("ts-boom", {"body": {}})
    assert e.value.status == 500
