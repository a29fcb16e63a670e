"""An app that connects to an OAuth-protected MCP server with the `mcp` SDK, keeping its
tokens in the session store (run by test_token_storage.py, one process per step, so each step
is a restart): `python -m tests.sessions.oauth_app <server url> <database url> <user> <sid>
<calls> [--wait]`.  Prints one JSON line: the `stats` results and whether it had to log in."""

from __future__ import annotations

import asyncio
import json
import sys
from urllib.parse import parse_qs, urlsplit

import httpx
import httpx2
from mcp.client.auth import OAuthClientProvider
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata

from supalite.sessions.backends.postgres import PostgresStore
from supalite.sessions.crypto import Cipher
from supalite.sessions.models import Session
from supalite.sessions.token_storage import SessionTokenStorage
from tests.sessions.conftest import KEY

CALLBACK = "http://127.0.0.1:1/oauth/callback"


async def main(server: str, db: str, user: str, sid: str, calls: int, wait: bool) -> None:
    store = PostgresStore(db, cipher=Cipher(bytes.fromhex(KEY)))
    if await store.get(user, sid) is None:  # the row exists before OAuth starts (pending)
        await store.create(Session(sid, user, server, CALLBACK))
    redirected: list[str] = []
    pending: dict[str, str] = {}

    async def redirect_handler(url: str) -> None:
        redirected.append(url)
        await store.update(user, sid, {"auth_url": url})
        # The user approves: the authorization server answers with a redirect to our callback.
        async with httpx.AsyncClient() as http:
            r = await http.get(url, follow_redirects=False)
        assert r.status_code in (302, 303, 307), r.text
        q = parse_qs(urlsplit(r.headers["location"]).query)
        pending.update(code=q["code"][0], state=q["state"][0])

    async def callback_handler() -> AuthorizationCodeResult:
        return AuthorizationCodeResult(code=pending["code"], state=pending["state"])

    auth = OAuthClientProvider(
        server_url=server,
        client_metadata=OAuthClientMetadata(
            client_name="supalite-test",
            redirect_uris=[CALLBACK],  # type: ignore[list-item]
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
        ),
        storage=SessionTokenStorage(store, user, sid),
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )
    results = []
    async with (
        httpx2.AsyncClient(auth=auth, timeout=30) as http,
        streamable_http_client(server, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        for i in range(calls):
            if wait and i > 0:
                await asyncio.sleep(1.2)  # past the first access token's 1-second lifetime
            result = await session.call_tool("stats", {})
            results.append(json.loads(result.content[0].text))  # type: ignore[union-attr]
    await store.update(user, sid, {"status": "active", "auth_url": None})  # connected: promote
    await store.close()
    print(json.dumps({"logged_in": bool(redirected), "results": results}), flush=True)


if __name__ == "__main__":
    a = sys.argv[1:]
    asyncio.run(main(a[0], a[1], a[2], a[3], int(a[4]), "--wait" in a))
