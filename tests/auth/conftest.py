"""Live supalite servers for the Auth tests, and a small client that speaks to /auth/v1."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest

from tests.helpers import LiveServer, free_port, supalite

API_VERSION = {"X-Supabase-Api-Version": "2024-01-01"}


@dataclass
class AuthServer:
    server: LiveServer
    http: httpx.Client

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def anon(self) -> str:
        return self.server.anon_key

    @property
    def service(self) -> str:
        return self.server.service_key

    def call(
        self,
        method: str,
        path: str,
        json: Any = None,
        token: str | None = None,
        key: str | None = None,
        **kw: Any,
    ) -> httpx.Response:
        headers = {"apikey": key or self.anon, **kw.pop("headers", {})}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, "/auth/v1" + path, json=json, headers=headers, **kw)

    def admin(self, method: str, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.call(method, path, json, key=self.service, **kw)

    def sign_up(self, email: str, password: str = "secret-pw-1", **body: Any) -> dict[str, Any]:
        r = self.call("POST", "/signup", {"email": email, "password": password, **body})
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    def sign_in(self, email: str, password: str = "secret-pw-1") -> dict[str, Any]:
        r = self.call(
            "POST",
            "/token",
            {"email": email, "password": password},
            params={"grant_type": "password"},
        )
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    def refresh(self, refresh_token: str) -> httpx.Response:
        return self.call(
            "POST",
            "/token",
            {"refresh_token": refresh_token},
            params={"grant_type": "refresh_token"},
        )

    def inbox(self, to: str) -> list[dict[str, Any]]:
        r = self.http.get("/inbox/v1/messages", params={"to": to}, headers={"apikey": self.service})
        assert r.status_code == 200, r.text
        out: list[dict[str, Any]] = r.json()
        return out

    def last_mail(self, to: str) -> dict[str, Any]:
        messages = self.inbox(to)
        assert messages, f"no mail for {to}"
        return messages[0]

    def script(self, sql: str) -> None:
        """Several statements as the database owner (psql-like), for set-up."""

        async def run() -> None:
            conn = await asyncpg.connect(self.server.info["DB URL"])
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        asyncio.run(run())

    def sql(self, statement: str, *args: Any) -> list[asyncpg.Record]:
        async def run() -> list[asyncpg.Record]:
            conn = await asyncpg.connect(self.server.info["DB URL"])
            try:
                return list(await conn.fetch(statement, *args))
            finally:
                await conn.close()

        return asyncio.run(run())


def link_in(mail: dict[str, Any]) -> str:
    m = re.search(r"https?://[^\s\"'<>]+/auth/v1/verify\?[^\s\"'<>]+", mail["text"])
    assert m, mail["text"]
    return m.group(0).replace("&amp;", "&")


def code_in(mail: dict[str, Any]) -> str:
    m = re.search(r"\b(\d{6})\b", mail["text"])
    assert m, mail["text"]
    return m.group(1)


def fragment(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).fragment).items()}


def query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def start_server(
    root: Path, edit: Callable[[str], str] = lambda s: s, env: dict[str, str] | None = None
) -> LiveServer:
    assert supalite("init", cwd=root).returncode == 0
    cfg = root / "supabase" / "config.toml"
    text = (
        cfg.read_text()
        .replace("port = 54321", f"port = {free_port()}")
        .replace("port = 54322", f"port = {free_port()}")
        .replace("enable_anonymous_sign_ins = false", "enable_anonymous_sign_ins = true")
    )
    cfg.write_text(edit(text))
    return LiveServer(root, env=env).start()


@pytest.fixture(scope="module")
def auth_server_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., AuthServer]]:
    started: list[tuple[LiveServer, httpx.Client]] = []

    def make(
        edit: Callable[[str], str] = lambda s: s, env: dict[str, str] | None = None
    ) -> AuthServer:
        server = start_server(tmp_path_factory.mktemp("auth"), edit, env)
        client = server.client()
        started.append((server, client))
        return AuthServer(server, client)

    yield make
    for server, client in started:
        client.close()
        server.stop()


@pytest.fixture(scope="module")
def auth(auth_server_factory: Callable[..., AuthServer]) -> AuthServer:
    """Supabase's local defaults: confirmations off, so sign-up signs in."""
    return auth_server_factory()


def confirmations_on(text: str) -> str:
    return text.replace("enable_confirmations = false", "enable_confirmations = true")


@pytest.fixture(scope="module")
def confirming(auth_server_factory: Callable[..., AuthServer]) -> AuthServer:
    """Email confirmations on: the email flows go through the built-in inbox."""
    return auth_server_factory(confirmations_on)
