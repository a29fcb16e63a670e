"""Choosing the backend from the environment: mcp-ts's order, logged, and never a silent
fall-back to memory."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from supalite.sessions import EnvSessionStore, errors
from supalite.sessions.models import Session
from supalite.sessions.selection import choose, open_store
from tests.helpers import LiveServer, free_port
from tests.sessions.conftest import KEY, RedisServer

EVERYTHING = {
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "MCP_TS_STORAGE_FILE": "/tmp/x.json",
    "MCP_TS_STORAGE_SQLITE_PATH": "/tmp/x.db",
    "SUPABASE_URL": "http://127.0.0.1:1",
    "SUPABASE_SECRET_KEY": "sb_secret_x",
    "DATABASE_URL": "postgresql://u@127.0.0.1:1/db",
}
ORDER = [
    "REDIS_URL",
    "MCP_TS_STORAGE_FILE",
    "MCP_TS_STORAGE_SQLITE_PATH",
    "SUPABASE_URL",
    "DATABASE_URL",
]
KINDS = ["redis", "file", "sqlite", "supabase", "postgres"]


def test_auto_detection_follows_mcp_ts_order() -> None:
    env = dict(EVERYTHING)
    for var, kind in zip(ORDER, KINDS, strict=True):
        assert choose(env) == (kind, var)
        env.pop(var)
        if var == "SUPABASE_URL":
            env.pop("SUPABASE_SECRET_KEY")
    assert choose(env) == ("memory", "default")
    # Supabase needs a service key; the URL alone (or with an anon key) does not choose it.
    assert choose({"SUPABASE_URL": "http://x", "SUPABASE_ANON_KEY": "a"}) == ("memory", "default")
    assert choose({"SUPABASE_URL": "http://x", "SUPABASE_SERVICE_ROLE_KEY": "k"})[0] == "supabase"


def test_explicit_type_wins_and_is_case_insensitive() -> None:
    assert choose({**EVERYTHING, "MCP_TS_STORAGE_TYPE": "SQLite"}) == (
        "sqlite",
        "MCP_TS_STORAGE_TYPE",
    )
    assert choose({"MCP_TS_STORAGE_TYPE": "memory", "REDIS_URL": "redis://x"})[0] == "memory"


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"MCP_TS_STORAGE_TYPE": "neon"}, "not one of"),
        ({"MCP_TS_STORAGE_TYPE": "redis"}, "REDIS_URL"),
        ({"MCP_TS_STORAGE_TYPE": "postgres"}, "DATABASE_URL"),
        ({"MCP_TS_STORAGE_TYPE": "supabase", "SUPABASE_URL": "http://x"}, "SUPABASE_SECRET_KEY"),
        ({"MCP_TS_STORAGE_TYPE": "supabase", "SUPABASE_SECRET_KEY": "k"}, "SUPABASE_URL"),
    ],
)
def test_explicit_choice_missing_its_settings_is_an_error(env: dict[str, str], needle: str) -> None:
    with pytest.raises(errors.SessionStoreError) as e:
        choose(env)
    assert e.value.code == errors.CONFIG and needle in e.value.message


@pytest.mark.parametrize(
    "env",
    [
        {"MCP_TS_STORAGE_TYPE": "redis", "REDIS_URL": "redis://127.0.0.1:{port}/0"},
        {"REDIS_URL": "redis://127.0.0.1:{port}/0"},  # auto-detected: no fall-back either
        {"MCP_TS_STORAGE_TYPE": "postgres", "DATABASE_URL": "postgresql://u:p@127.0.0.1:{port}/d"},
        {
            "MCP_TS_STORAGE_TYPE": "supabase",
            "SUPABASE_URL": "http://127.0.0.1:{port}",
            "SUPABASE_SECRET_KEY": "k",
        },
    ],
)
async def test_a_chosen_backend_that_cannot_start_is_an_error(env: dict[str, str]) -> None:
    port = str(free_port())  # nothing listens there
    env = {k: v.replace("{port}", port) for k, v in env.items()}
    with pytest.raises(errors.SessionStoreError) as e:
        await open_store(env)
    assert e.value.code == errors.UNAVAILABLE
    assert "cannot start" in e.value.message and "chosen by" in e.value.message


async def test_supabase_without_the_tables_says_how_to_create_them(
    supabase_server_without_tables: str,
) -> None:
    url, key = supabase_server_without_tables.split(" ")
    with pytest.raises(errors.SessionStoreError) as e:
        await open_store({"SUPABASE_URL": url, "SUPABASE_SERVICE_ROLE_KEY": key})
    assert e.value.code == errors.CONFIG and "supalite sessions init" in e.value.message


async def test_choice_is_logged_and_a_missing_key_warned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "supalite.sessions")
    store = await open_store({"MCP_TS_STORAGE_SQLITE_PATH": str(tmp_path / "s.db")})
    await store.close()
    assert "session storage: sqlite (chosen by MCP_TS_STORAGE_SQLITE_PATH)" in caplog.text
    assert "STORAGE_ENCRYPTION_KEY is not set" in caplog.text
    caplog.clear()
    store = await open_store(
        {"MCP_TS_STORAGE_FILE": str(tmp_path / "s.json"), "STORAGE_ENCRYPTION_KEY": KEY}
    )
    await store.close()
    assert "chosen by MCP_TS_STORAGE_FILE" in caplog.text and "not set" not in caplog.text


async def test_a_bad_key_stops_the_store_from_opening(tmp_path: Path) -> None:
    with pytest.raises(errors.SessionStoreError) as e:
        await open_store(
            {
                "MCP_TS_STORAGE_SQLITE_PATH": str(tmp_path / "s.db"),
                "STORAGE_ENCRYPTION_KEY": "too-short",
            }
        )
    assert e.value.code == errors.BAD_KEY


async def test_module_level_sessions_uses_the_environment(
    monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("STORAGE_ENCRYPTION_KEY", KEY)
    store = EnvSessionStore()
    try:
        sid = store.generate_session_id()
        await store.create(Session(sid, "env-user", "https://m/mcp", "https://a/cb"))
        assert (await store.backend()).name == "redis"
        assert await store.list_ids("env-user") == [sid]
        await store.delete("env-user", sid)
    finally:
        await store.close()


async def test_supabase_with_a_new_style_secret_key(supabase_server: LiveServer) -> None:
    env = {
        "SUPABASE_URL": supabase_server.url,
        "SUPABASE_SECRET_KEY": supabase_server.info["Secret key"],
        "STORAGE_ENCRYPTION_KEY": KEY,
    }
    store = await open_store(env)
    try:
        assert store.name == "supabase"
        sid = store.generate_session_id()
        await store.create(Session(sid, "secret-key-user", "https://m/mcp", "https://a/cb"))
        await store.patch_credentials("secret-key-user", sid, {"tokens": {"access_token": "t"}})
        creds = await store.get_credentials("secret-key-user", sid)
        assert creds is not None and creds.tokens == {"access_token": "t"}
        await store.delete("secret-key-user", sid)
    finally:
        await store.close()
