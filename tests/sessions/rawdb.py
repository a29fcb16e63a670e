"""Read and write what a backend stored, under the store, to check the bytes at rest and to
plant bad data (as another program, or a bug, would)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from supalite.sessions.backends.file import FileStore
from supalite.sessions.backends.postgres import PostgresStore
from supalite.sessions.backends.redis import RedisStore
from supalite.sessions.backends.sqlite import SqliteStore
from supalite.sessions.backends.supabase import SupabaseStore
from supalite.sessions.store import SessionStore

JSON_COLUMNS = {"headers", "client_information", "tokens", "oauth_state"}
TABLE = {"headers": "mcp_sessions", "status": "mcp_sessions"}  # else mcp_credentials


def _table(column: str) -> str:
    return TABLE.get(column, "mcp_credentials")


async def _pg_url(store: SessionStore, db_url: str | None) -> str:
    if isinstance(store, PostgresStore):
        return store.dsn
    assert db_url is not None
    return db_url


async def read(
    store: SessionStore, user: str, sid: str, column: str, db_url: str | None = None
) -> Any:
    """The stored value: JSON columns decoded once (an encrypted one is the `enc:1:` string)."""
    if isinstance(store, FileStore):
        data = json.loads(store.path.read_text())
        part = "sessions" if _table(column) == "mcp_sessions" else "credentials"
        return data[part][sid].get(column)
    if isinstance(store, SqliteStore):
        with sqlite3.connect(store.path) as db:
            row = db.execute(
                f"select {column} from {_table(column)} where session_id = ?", (sid,)
            ).fetchone()
        text = row[0]
        return json.loads(text) if column in JSON_COLUMNS and text is not None else text
    if isinstance(store, RedisStore):
        r = aioredis.Redis.from_url(store.url)
        kind = "session" if _table(column) == "mcp_sessions" else "credentials"
        raw = await r.hget(f"{store.prefix}:{kind}:{user}:{sid}", column)
        await r.aclose()
        return None if raw is None else json.loads(raw)
    assert isinstance(store, PostgresStore | SupabaseStore)
    conn = await asyncpg.connect(await _pg_url(store, db_url))
    try:
        text = await conn.fetchval(
            f"select {column}::text from public.{_table(column)} where session_id = $1", sid
        )
    finally:
        await conn.close()
    return json.loads(text) if column in JSON_COLUMNS and text is not None else text


async def write_raw(
    store: SessionStore, user: str, sid: str, column: str, text: str, db_url: str | None = None
) -> None:
    """Put `text` as the column's stored text, bypassing the store (may be malformed JSON where
    the backend keeps JSON as text)."""
    if isinstance(store, FileStore):
        data = store.path.read_text()
        doc = json.loads(data)
        part = "sessions" if _table(column) == "mcp_sessions" else "credentials"
        marker = "\x00PLANT\x00"
        doc[part][sid][column] = marker
        store.path.write_text(json.dumps(doc).replace(json.dumps(marker), text))
        return
    if isinstance(store, SqliteStore):
        with sqlite3.connect(store.path) as db:
            db.execute(
                f"update {_table(column)} set {column} = ? where session_id = ?", (text, sid)
            )
        return
    if isinstance(store, RedisStore):
        r = aioredis.Redis.from_url(store.url)
        kind = "session" if _table(column) == "mcp_sessions" else "credentials"
        await r.hset(f"{store.prefix}:{kind}:{user}:{sid}", column, text)
        await r.aclose()
        return
    assert isinstance(store, PostgresStore | SupabaseStore)
    conn = await asyncpg.connect(await _pg_url(store, db_url))
    try:
        cast = "::jsonb" if column in JSON_COLUMNS else ""
        await conn.execute(
            f"update public.{_table(column)} set {column} = $1{cast} where session_id = $2",
            text,
            sid,
        )
    finally:
        await conn.close()
