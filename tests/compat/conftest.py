"""A live supalite with the compatibility scenario, and its callers.

Each test module gets its own server (a fresh project, so a fresh database): the scenario is a
migration of that project, applied on first start like any user migration.  There is no Auth
service yet, so alice and bob exist only as access tokens minted with the server's JWT secret,
with the claims Supabase Auth puts in its tokens.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import jwt
import pytest

from tests.auth.conftest import auth_server_factory  # noqa: F401  (shared with tests/auth)
from tests.compat.cases import DB_ROLE, USERS, db_claims
from tests.helpers import LiveServer, free_port

HERE = Path(__file__).resolve().parent
SCENARIO_SQL = HERE / "scenario.sql"
SEED_MARKER = "-- ===== seed ====="
SCENARIO_TABLES = "profiles, projects, tasks, labels, task_labels, events"

_AMBIENT = ("DATABASE_URL", "JWT_SECRET", "PORT", "SITE_URL")


def mint_user_token(secret: str, user: str, lifetime: int = 4 * 3600) -> str:
    now = int(time.time())
    claims = {
        "sub": USERS[user]["id"],
        "email": USERS[user]["email"],
        "role": "authenticated",
        "aud": "authenticated",
        "iat": now,
        "exp": now + lifetime,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


@dataclass
class Compat:
    """The running server and how each caller authenticates to it."""

    server: LiveServer
    tokens: dict[str, str]

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def db_url(self) -> str:
        return self.server.info["DB URL"]

    def apikey(self, role: str) -> str:
        return self.server.service_key if role == "service" else self.server.anon_key

    def token(self, role: str) -> str | None:
        """The user's access token; None for anon and service (their key is the bearer)."""
        return self.tokens.get(role)

    def env(self) -> dict[str, str]:
        """What scenario.mjs reads."""
        return {
            "SUPABASE_URL": self.url,
            "SUPABASE_ANON_KEY": self.server.anon_key,
            "SUPABASE_SERVICE_ROLE_KEY": self.server.service_key,
            "ALICE_TOKEN": self.tokens["alice"],
            "BOB_TOKEN": self.tokens["bob"],
        }

    # -- direct database access, as the owner (arranging, resetting, the SQL oracle)

    def reset_data(self) -> None:
        """Put the seed rows back exactly as the migration left them."""
        seed = SCENARIO_SQL.read_text().split(SEED_MARKER, 1)[1]
        run(self.db_url, f"truncate {SCENARIO_TABLES} restart identity cascade;\n{seed}")


async def _run(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def run(url: str, sql: str) -> None:
    asyncio.run(_run(url, sql))


async def as_role(conn: asyncpg.Connection, role: str) -> None:
    """Inside a transaction: become the caller, as PostgREST does before each request."""
    await conn.execute(
        "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)",
        DB_ROLE[role],
        json.dumps(db_claims(role)),
    )


def _project(base: Path) -> Path:
    from supalite.cli import main

    assert main(["init", "--workdir", str(base)]) == 0
    cfg = base / "supabase" / "config.toml"
    text = cfg.read_text().replace("port = 54322", f"port = {free_port()}")
    cfg.write_text(text.replace("port = 54321", f"port = {free_port()}"))
    shutil.copy(
        SCENARIO_SQL, base / "supabase" / "migrations" / "20240101000000_compat_scenario.sql"
    )
    return base


@pytest.fixture(scope="module")
def compat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Compat]:
    project = _project(tmp_path_factory.mktemp("compat"))
    server = LiveServer(project)
    for name in list(server.env):
        if name in _AMBIENT or name.startswith(("SUPALITE_", "PGRST_", "SMTP_")):
            del server.env[name]
    server.start()
    try:
        out = "".join(server.output)
        assert "Applied migration 20240101000000_compat_scenario.sql" in out, out
        secret = server.info["JWT secret"]
        yield Compat(server, {u: mint_user_token(secret, u) for u in USERS})
    finally:
        server.stop()


def node_env(compat: Compat, plan: dict[str, Any]) -> dict[str, str]:
    return {**os.environ, **compat.env(), "COMPAT_PLAN": json.dumps(plan)}
