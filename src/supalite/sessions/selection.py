"""Which backend the environment asks for, mcp-ts's way: `MCP_TS_STORAGE_TYPE`, else the first
of REDIS_URL, MCP_TS_STORAGE_FILE, MCP_TS_STORAGE_SQLITE_PATH, SUPABASE_URL + a service key,
DATABASE_URL, else memory.  The choice is logged.

Unlike mcp-ts, a backend that was chosen (explicitly or by a variable being set) and cannot
start is an error that says why; nothing falls back to memory, which would lose every session
at the next restart.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from supalite.sessions import errors
from supalite.sessions.crypto import KEY_ENV, Cipher
from supalite.sessions.store import SessionStore

log = logging.getLogger("supalite.sessions")

TYPES = ("memory", "file", "sqlite", "redis", "supabase", "postgres")


def _supabase_key(env: Mapping[str, str]) -> str | None:
    return env.get("SUPABASE_SERVICE_ROLE_KEY") or env.get("SUPABASE_SECRET_KEY") or None


def choose(env: Mapping[str, str]) -> tuple[str, str]:
    """(backend, why) from the environment, without connecting to anything."""
    explicit = (env.get("MCP_TS_STORAGE_TYPE") or "").strip().lower()
    if explicit:
        if explicit not in TYPES:
            raise errors.SessionStoreError(
                errors.CONFIG,
                f"MCP_TS_STORAGE_TYPE={explicit!r} is not one of {', '.join(TYPES)}",
            )
        needs = {
            "redis": ("REDIS_URL",) if not env.get("REDIS_URL") else (),
            "supabase": tuple(
                n
                for n, ok in (
                    ("SUPABASE_URL", env.get("SUPABASE_URL")),
                    ("SUPABASE_SERVICE_ROLE_KEY or SUPABASE_SECRET_KEY", _supabase_key(env)),
                )
                if not ok
            ),
            "postgres": ("DATABASE_URL",) if not env.get("DATABASE_URL") else (),
        }.get(explicit, ())
        if needs:
            raise errors.SessionStoreError(
                errors.CONFIG,
                f"MCP_TS_STORAGE_TYPE={explicit} needs {' and '.join(needs)} to be set",
            )
        return explicit, "MCP_TS_STORAGE_TYPE"
    if env.get("REDIS_URL"):
        return "redis", "REDIS_URL"
    if env.get("MCP_TS_STORAGE_FILE"):
        return "file", "MCP_TS_STORAGE_FILE"
    if env.get("MCP_TS_STORAGE_SQLITE_PATH"):
        return "sqlite", "MCP_TS_STORAGE_SQLITE_PATH"
    if env.get("SUPABASE_URL") and _supabase_key(env):
        return "supabase", "SUPABASE_URL"
    if env.get("DATABASE_URL"):
        return "postgres", "DATABASE_URL"
    return "memory", "default"


def build(kind: str, env: Mapping[str, str], **kw: Any) -> SessionStore:
    """The store object, not yet connected (see `open_store`)."""
    if kind == "memory":
        from supalite.sessions.backends.memory import MemoryStore

        return MemoryStore(**kw)
    cipher = kw.pop("cipher", None) or Cipher.from_env(env)
    if kind == "file":
        from supalite.sessions.backends.file import FileStore

        return FileStore(env.get("MCP_TS_STORAGE_FILE") or "./sessions.json", cipher=cipher, **kw)
    if kind == "sqlite":
        from supalite.sessions.backends.sqlite import SqliteStore

        path = env.get("MCP_TS_STORAGE_SQLITE_PATH") or "./sessions.db"
        return SqliteStore(path, cipher=cipher, **kw)
    if kind == "redis":
        from supalite.sessions.backends.redis import RedisStore

        return RedisStore(env["REDIS_URL"], cipher=cipher, **kw)
    if kind == "supabase":
        from supalite.sessions.backends.supabase import SupabaseStore

        key = _supabase_key(env) or ""
        return SupabaseStore(env["SUPABASE_URL"], key, cipher=cipher, **kw)
    from supalite.sessions.backends.postgres import PostgresStore

    return PostgresStore(env["DATABASE_URL"], cipher=cipher, **kw)


async def open_store(env: Mapping[str, str] | None = None, **kw: Any) -> SessionStore:
    """Choose, build and check the backend; any failure is a `SessionStoreError` naming the
    backend and the variable that chose it."""
    env = os.environ if env is None else env
    kind, why = choose(env)
    store = build(kind, env, **kw)
    try:
        await store.init()
    except errors.SessionStoreError as e:
        await store.close()
        raise errors.SessionStoreError(
            e.code, f"session storage {kind!r} (chosen by {why}) cannot start: {e.message}"
        ) from e
    log.info("session storage: %s (chosen by %s)", kind, why)
    if kind != "memory" and not store.cipher.enabled:
        log.warning("%s is not set: session tokens and headers are stored in plain text", KEY_ENV)
    return store
