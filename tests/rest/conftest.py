"""A live supalite with a small library schema, shared by the Data API tests of a module."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import pytest

from tests.helpers import LiveServer, free_port, supalite

SCHEMA = Path(__file__).with_name("library.sql")
ALICE = "11111111-1111-1111-1111-111111111111"
BOB = "22222222-2222-2222-2222-222222222222"


@dataclass
class Api:
    server: LiveServer
    client: httpx.Client

    def token(self, sub: str, role: str = "authenticated", **extra: object) -> str:
        now = int(time.time())
        claims = {"sub": sub, "role": role, "aud": "authenticated", "iat": now,
                  "exp": now + 3600, **extra}  # fmt: skip
        return jwt.encode(claims, self.server.info["JWT secret"], algorithm="HS256")

    def headers(self, who: str = "anon", **extra: str) -> dict[str, str]:
        h = {"apikey": self.server.anon_key}
        if who == "service":
            h["apikey"] = self.server.service_key
        elif who in (ALICE, BOB):
            h["Authorization"] = f"Bearer {self.token(who)}"
        return {**h, **extra}

    def get(self, path: str, who: str = "anon", **headers: str) -> httpx.Response:
        return self.client.get("/rest/v1/" + path, headers=self.headers(who, **headers))

    def request(self, method: str, path: str, who: str = "anon", json: object = None,
                content: bytes | None = None, **headers: str) -> httpx.Response:  # fmt: skip
        return self.client.request(method, "/rest/v1/" + path, json=json, content=content,
                                   headers=self.headers(who, **headers))  # fmt: skip

    def eventually(self, check: Callable[[], bool], timeout: float = 10) -> None:
        """Poll until `check()` holds: the schema cache reloads asynchronously after DDL."""
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, "the schema cache did not catch up"
            time.sleep(0.05)

    def sql(self, statement: str) -> None:
        """Run SQL as the database owner (psql-like), for set-up and checks."""
        import asyncio

        import asyncpg

        async def run() -> None:
            conn = await asyncpg.connect(self.server.info["DB URL"])
            try:
                await conn.execute(statement)
            finally:
                await conn.close()

        asyncio.run(run())


def project_with(root: Path, migration: str) -> Path:
    """An initialised project on free ports whose one migration is `migration`."""
    assert supalite("init", cwd=root).returncode == 0
    cfg = root / "supabase" / "config.toml"
    cfg.write_text(
        cfg.read_text()
        .replace("port = 54321", f"port = {free_port()}")
        .replace("port = 54322", f"port = {free_port()}")
    )
    (root / "supabase" / "migrations" / "20240101000000_schema.sql").write_text(migration)
    return root


def serving(project: Path) -> Iterator[Api]:
    """A live server of `project`, for a module fixture to yield from."""
    with LiveServer(project) as server, server.client() as client:
        yield Api(server, client)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    yield from serving(project_with(tmp_path_factory.mktemp("restapi"), SCHEMA.read_text()))
