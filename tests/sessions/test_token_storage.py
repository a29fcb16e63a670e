"""`SessionTokenStorage` with the real `mcp` SDK: an app logs in to an OAuth-protected MCP server
(served by the SDK in another process), refreshes its token, is restarted, and carries on with
what the session store kept: no second login."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from supalite.sessions import errors
from supalite.sessions.backends.memory import MemoryStore
from supalite.sessions.backends.postgres import PostgresStore
from supalite.sessions.crypto import Cipher
from supalite.sessions.models import Session
from supalite.sessions.token_storage import SessionTokenStorage
from tests.helpers import REPO, free_port
from tests.sessions import rawdb
from tests.sessions.conftest import KEY


@pytest.fixture(scope="module")
def mcp_server() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.sessions.oauth_server", str(port)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/.well-known/oauth-authorization-server", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError(f"the MCP server did not start: {proc.communicate()[0]!r}")
    yield url + "/mcp"
    proc.terminate()
    proc.wait(10)


def app(server: str, db: str, user: str, sid: str, calls: int, wait: bool = False) -> Any:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.sessions.oauth_app",
            server,
            db,
            user,
            sid,
            str(calls),
            *(["--wait"] if wait else []),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


async def test_login_refresh_and_restart(mcp_server: str, pg_url: str) -> None:
    store = PostgresStore(pg_url, cipher=Cipher(bytes.fromhex(KEY)))
    user, sid = "app-user", store.generate_session_id()
    # Step 1: first run logs in, then its 1-second token runs out and the SDK refreshes it.
    out = app(mcp_server, pg_url, user, sid, calls=2, wait=True)
    assert out["logged_in"] is True
    first, second = out["results"]
    assert (first["authorizations"], first["code_exchanges"], first["refreshes"]) == (1, 1, 0)
    assert (second["authorizations"], second["refreshes"]) == (1, 1)
    assert second["token"] != first["token"]
    creds = await store.get_credentials(user, sid)
    assert creds is not None and creds.tokens is not None
    assert creds.tokens["access_token"] == second["token"]  # the refreshed token was stored
    assert creds.client_information is not None
    assert creds.client_id == creds.client_information["client_id"]
    assert (await rawdb.read(store, user, sid, "tokens")).startswith("enc:1:")
    s = await store.get(user, sid)
    assert s is not None and s.status == "active" and s.expires_at is None
    # Step 2: a restarted app uses the stored token: no login, no registration, no refresh.
    out = app(mcp_server, pg_url, user, sid, calls=1)
    assert out["logged_in"] is False
    (third,) = out["results"]
    assert (third["registrations"], third["authorizations"], third["refreshes"]) == (1, 1, 1)
    assert third["token"] == second["token"]
    # Step 3: losing the credentials means logging in again (the store is the only memory).
    await store.clear_credentials(user, sid)
    out = app(mcp_server, pg_url, user, sid, calls=1)
    assert out["logged_in"] is True and out["results"][0]["authorizations"] == 2
    await store.close()


async def test_token_storage_needs_its_session() -> None:
    from mcp.shared.auth import OAuthToken

    store = MemoryStore()
    storage = SessionTokenStorage(store, "u", "missing")
    assert await storage.get_tokens() is None
    with pytest.raises(errors.SessionStoreError) as e:
        await storage.set_tokens(OAuthToken(access_token="a"))
    assert e.value.code == errors.SESSION_NOT_FOUND
    await store.create(Session("s", "u", "https://m/mcp", "https://a/cb"))
    await store.patch_credentials("u", "s", {"tokens": {"no_access_token": 1}})
    with pytest.raises(errors.SessionStoreError) as e:
        await SessionTokenStorage(store, "u", "s").get_tokens()
    assert e.value.code == errors.CORRUPT_DATA
