"""What the persistent backends keep on disk: the four secret fields encrypted in mcp-ts's
format, rows mcp-ts wrote readable here, bad stored data a clear error, and key rotation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from supalite.sessions import errors
from supalite.sessions.crypto import Cipher
from supalite.sessions.models import Session
from supalite.sessions.store import SessionStore
from tests.helpers import LiveServer
from tests.sessions import rawdb
from tests.sessions.conftest import KEY, Clock, make_store
from tests.sessions.test_crypto import node

OTHER = "a1" * 32


def new(sid: str, **kw: object) -> Session:
    return Session(
        session_id=sid, user_id="u", server_url="https://m/mcp", callback_url="https://a/cb", **kw
    )  # type: ignore[arg-type]


@pytest.fixture
def dburl(request: pytest.FixtureRequest, persistent_backend: tuple[str, str]) -> str | None:
    if persistent_backend[0] != "supabase":
        return None
    live: LiveServer = request.getfixturevalue("supabase_server")
    return live.info["DB URL"]


async def test_secrets_are_encrypted_at_rest(persistent: SessionStore, dburl: str | None) -> None:
    await persistent.create(new("s", headers={"Authorization": "Bearer h"}))
    await persistent.patch_credentials(
        "u",
        "s",
        {
            "tokens": {"access_token": "tok"},
            "client_information": {"client_id": "c"},
            "code_verifier": "ver",
            "client_id": "c",
            "oauth_state": {"nonce": "n"},
        },
    )
    for column in ("headers", "tokens", "client_information", "code_verifier"):
        stored = await rawdb.read(persistent, "u", "s", column, dburl)
        assert isinstance(stored, str) and stored.startswith("enc:1:"), (column, stored)
        assert "tok" not in stored and "Bearer" not in stored
    # mcp-ts leaves these in clear; so do we (they are not secrets and are queried).
    assert await rawdb.read(persistent, "u", "s", "client_id", dburl) == "c"
    assert await rawdb.read(persistent, "u", "s", "oauth_state", dburl) == {"nonce": "n"}
    # What node (mcp-ts's cipher) made decrypts out of the store.
    sealed = node("encrypt", KEY, json.dumps({"access_token": "from-node"}))
    await rawdb.write_raw(persistent, "u", "s", "tokens", json.dumps(sealed), dburl)
    creds = await persistent.get_credentials("u", "s")
    assert creds is not None and creds.tokens == {"access_token": "from-node"}
    # ... and what the store wrote decrypts in node.
    stored = await rawdb.read(persistent, "u", "s", "headers", dburl)
    assert json.loads(node("decrypt", KEY, stored)) == {"Authorization": "Bearer h"}


async def test_wrong_key_is_a_decryption_error(
    persistent: SessionStore, persistent_backend: tuple[str, str], tmp_path: Path, clock: Clock
) -> None:
    await persistent.create(new("w", headers={"a": "b"}))
    await persistent.patch_credentials("u", "w", {"tokens": {"access_token": "t"}})
    other = make_store(*persistent_backend, tmp_path, clock, Cipher(bytes.fromhex(OTHER)))
    if persistent_backend[0] == "redis":
        other.prefix = persistent.prefix  # type: ignore[attr-defined]
    try:
        for call in (other.get("u", "w"), other.get_credentials("u", "w")):
            with pytest.raises(errors.SessionStoreError) as e:
                await call
            assert e.value.code == errors.DECRYPTION_FAILED
    finally:
        await other.close()


@pytest.mark.parametrize("column", ["headers", "tokens"])
async def test_malformed_stored_value_is_corrupt_data(
    persistent: SessionStore, dburl: str | None, column: str
) -> None:
    await persistent.create(new("m", headers={"a": "b"}))
    await persistent.patch_credentials("u", "m", {"tokens": {"access_token": "t"}})
    # Where each field is JSON text of its own, plant text that is not JSON; in jsonb (which
    # cannot hold malformed JSON) and in the one-document file, a value of the wrong shape.
    bad = '"[1, 2' if persistent.name in ("sqlite", "redis") else "[1, 2]"
    await rawdb.write_raw(persistent, "u", "m", column, bad, dburl)
    call = persistent.get("u", "m") if column == "headers" else persistent.get_credentials("u", "m")
    with pytest.raises(errors.SessionStoreError) as e:
        await call
    assert e.value.code == errors.CORRUPT_DATA and column in e.value.message


async def test_rotate_key_reencrypts_everything(
    persistent_backend: tuple[str, str], tmp_path: Path, clock: Clock, dburl: str | None
) -> None:
    old = make_store(*persistent_backend, tmp_path, clock, Cipher(bytes.fromhex(OTHER)))
    await old.init()
    if persistent_backend[0] in ("postgres", "supabase"):
        await old.clear_all()
    await old.create(new("r", headers={"h": "v"}))
    await old.patch_credentials(
        "u",
        "r",
        {
            "tokens": {"access_token": "t"},
            "code_verifier": "v",
            "client_information": {"client_id": "c"},
        },
    )
    await old.close()
    rotating = make_store(
        *persistent_backend, tmp_path, clock, Cipher(bytes.fromhex(KEY), bytes.fromhex(OTHER))
    )
    if persistent_backend[0] == "redis":
        rotating.prefix = old.prefix  # type: ignore[attr-defined]
    try:
        creds = await rotating.get_credentials("u", "r")  # reads with the previous key
        assert creds is not None and creds.tokens == {"access_token": "t"}
        assert await rotating.reencrypt() == 4
        assert await rotating.reencrypt() == 0
    finally:
        await rotating.close()
    new_only = make_store(*persistent_backend, tmp_path, clock, Cipher(bytes.fromhex(KEY)))
    if persistent_backend[0] == "redis":
        new_only.prefix = old.prefix  # type: ignore[attr-defined]
    try:
        s = await new_only.get("u", "r")
        creds = await new_only.get_credentials("u", "r")
        assert s is not None and s.headers == {"h": "v"}
        assert creds is not None and creds.code_verifier == "v"
        assert creds.client_information == {"client_id": "c"}
        stored = await rawdb.read(new_only, "u", "r", "tokens", dburl)
        assert json.loads(node("decrypt", KEY, stored)) == {"access_token": "t"}
    finally:
        await new_only.close()


async def test_a_malformed_session_file_is_an_error_and_is_not_overwritten(
    tmp_path: Path, clock: Clock
) -> None:
    from supalite.sessions.backends.file import FileStore

    path = tmp_path / "sessions.json"
    path.write_text('{"sessions": {"s": {"session_id": "s", ')
    store = FileStore(path, clock=clock)
    for call in (store.get("u", "s"), store.create(new("t")), store.list_all_ids()):
        with pytest.raises(errors.SessionStoreError) as e:
            await call
        assert e.value.code == errors.CORRUPT_DATA and str(path) in e.value.message
    assert path.read_text() == '{"sessions": {"s": {"session_id": "s", '


async def test_rotate_key_command(tmp_path: Path, clock: Clock) -> None:
    from supalite.sessions.backends.sqlite import SqliteStore
    from tests.helpers import supalite

    db = tmp_path / "sessions.db"
    old = SqliteStore(db, cipher=Cipher(bytes.fromhex(OTHER)))
    await old.create(new("k", headers={"h": "v"}))
    await old.patch_credentials("u", "k", {"tokens": {"access_token": "t"}})
    await old.close()
    env = {"MCP_TS_STORAGE_SQLITE_PATH": str(db), "STORAGE_ENCRYPTION_KEY": KEY}
    r = supalite("sessions", "rotate-key", cwd=tmp_path, env=env)  # previous key missing
    assert r.returncode == 1 and "cannot decrypt" in r.stderr
    r = supalite(
        "sessions",
        "rotate-key",
        cwd=tmp_path,
        env={**env, "STORAGE_ENCRYPTION_KEY_PREVIOUS": OTHER},
    )
    assert r.returncode == 0, r.stderr
    assert "Re-encrypted 2 values" in r.stdout
    fresh = SqliteStore(db, cipher=Cipher(bytes.fromhex(KEY)))
    creds = await fresh.get_credentials("u", "k")
    s = await fresh.get("u", "k")
    assert creds is not None and creds.tokens == {"access_token": "t"}
    assert s is not None and s.headers == {"h": "v"}
    await fresh.close()
    r = supalite(
        "sessions", "rotate-key", cwd=tmp_path, env={"MCP_TS_STORAGE_SQLITE_PATH": str(db)}
    )
    assert r.returncode == 1 and "must be set" in r.stderr
