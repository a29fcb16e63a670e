"""The `SessionStore` contract, run against every backend (memory, file, SQLite, PostgreSQL,
Redis, Supabase through a live supalite's Data API), encryption on for the persistent ones."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from supalite.sessions import errors
from supalite.sessions.models import Session
from supalite.sessions.store import SessionStore
from tests.sessions.conftest import Clock

MS = timedelta(milliseconds=1)


def new(sid: str, user: str = "user-1", **kw: object) -> Session:
    return Session(
        session_id=sid,
        user_id=user,
        server_url="https://mcp.example/mcp",
        callback_url="https://app.example/cb",
        **kw,
    )  # type: ignore[arg-type]


async def test_create_then_get_round_trips_every_field(store: SessionStore, clock: Clock) -> None:
    await store.create(
        new(
            "s1",
            server_id="srv",
            server_name="Example",
            transport_type="sse",
            headers={"X-Api": "k"},
            auth_url="https://auth/x",
        )
    )
    s = await store.get("user-1", "s1")
    assert s is not None
    assert (s.session_id, s.user_id, s.server_id, s.server_name, s.transport_type) == (
        "s1",
        "user-1",
        "srv",
        "Example",
        "sse",
    )
    assert (s.server_url, s.callback_url, s.auth_url) == (
        "https://mcp.example/mcp",
        "https://app.example/cb",
        "https://auth/x",
    )
    assert s.headers == {"X-Api": "k"}
    assert s.status == "pending"
    assert s.expires_at is not None and abs(s.expires_at - (clock.now + timedelta(minutes=10))) < MS
    assert s.updated_at is not None and abs(s.updated_at - clock.now) < MS


async def test_duplicate_create_is_session_exists(store: SessionStore) -> None:
    await store.create(new("dup"))
    with pytest.raises(errors.SessionStoreError) as e:
        await store.create(new("dup", server_name="other"))
    assert e.value.code == errors.SESSION_EXISTS
    s = await store.get("user-1", "dup")
    assert s is not None and s.server_name is None  # the first one is intact


async def test_unknown_session(store: SessionStore) -> None:
    assert await store.get("user-1", "nope") is None
    assert await store.get_credentials("user-1", "nope") is None
    for call in (
        store.update("user-1", "nope", {"server_name": "x"}),
        store.patch_credentials("user-1", "nope", {"tokens": {"a": 1}}),
    ):
        with pytest.raises(errors.SessionStoreError) as e:
            await call
        assert e.value.code == errors.SESSION_NOT_FOUND
    await store.delete("user-1", "nope")  # silent
    await store.clear_credentials("user-1", "nope")  # silent


async def test_sessions_are_scoped_to_their_user(store: SessionStore) -> None:
    await store.create(new("mine", user="alice"))
    assert await store.get("bob", "mine") is None
    with pytest.raises(errors.SessionStoreError):
        await store.update("bob", "mine", {"server_name": "hijack"})
    await store.delete("bob", "mine")
    s = await store.get("alice", "mine")
    assert s is not None and s.server_name is None


async def test_update_pending_refreshes_expiry_and_promotion_clears_it(
    store: SessionStore, clock: Clock
) -> None:
    await store.create(new("life"))
    clock.advance(timedelta(minutes=8))
    await store.update("user-1", "life", {"auth_url": "https://auth/1"})
    s = await store.get("user-1", "life")
    assert s is not None and s.auth_url == "https://auth/1" and s.status == "pending"
    assert s.expires_at is not None and abs(s.expires_at - (clock.now + timedelta(minutes=10))) < MS
    clock.advance(timedelta(minutes=8))  # 16 min after creation, 8 after the refresh
    assert await store.get("user-1", "life") is not None
    await store.update("user-1", "life", {"status": "active", "auth_url": None})
    s = await store.get("user-1", "life")
    assert s is not None and s.status == "active" and s.expires_at is None and s.auth_url is None
    clock.advance(timedelta(days=29))
    assert await store.get("user-1", "life") is not None  # active: no 10-minute expiry


async def test_expired_pending_is_invisible_at_once_and_swept(
    store: SessionStore, clock: Clock
) -> None:
    await store.create(new("old"))
    await store.patch_credentials("user-1", "old", {"tokens": {"access_token": "t"}})
    await store.create(new("fresh"))
    await store.update("user-1", "fresh", {"status": "active"})
    clock.advance(timedelta(minutes=11))
    assert await store.get("user-1", "old") is None
    assert await store.get_credentials("user-1", "old") is None
    assert [s.session_id for s in await store.list("user-1")] == ["fresh"]
    assert await store.list_ids("user-1") == ["fresh"]
    assert await store.list_all_ids() == ["fresh"]
    with pytest.raises(errors.SessionStoreError) as e:
        await store.update("user-1", "old", {"status": "active"})  # no resurrection
    assert e.value.code == errors.SESSION_NOT_FOUND
    assert await store.cleanup_expired() == 1
    assert await store.cleanup_expired() == 0
    assert await store.list_ids("user-1") == ["fresh"]
    # The id is free again, and the new session has no credentials of the old one.
    await store.create(new("old"))
    creds = await store.get_credentials("user-1", "old")
    assert creds is not None and creds.tokens is None


async def test_dormant_active_is_invisible_and_swept(store: SessionStore, clock: Clock) -> None:
    await store.create(new("idle", status="active"))
    s = await store.get("user-1", "idle")
    assert s is not None and s.expires_at is None
    clock.advance(timedelta(days=30, minutes=1))
    assert await store.get("user-1", "idle") is None
    assert await store.list("user-1") == []
    assert await store.cleanup_expired() == 1


async def test_credentials_patch_per_field(store: SessionStore) -> None:
    await store.create(new("c"))
    creds = await store.get_credentials("user-1", "c")
    assert creds is not None and creds.tokens is None and creds.client_id is None
    await store.patch_credentials(
        "user-1",
        "c",
        {
            "tokens": {"access_token": "a1", "refresh_token": "r1"},
            "client_information": {"client_id": "cid", "client_secret": "sec"},
            "client_id": "cid",
            "code_verifier": "verifier-1",
            "oauth_state": {"nonce": "n", "sessionId": "c", "serverId": "srv", "createdAt": 1},
        },
    )
    await store.patch_credentials("user-1", "c", {"tokens": {"access_token": "a2"}})
    creds = await store.get_credentials("user-1", "c")
    assert creds is not None
    assert creds.tokens == {"access_token": "a2"}
    assert creds.client_information == {"client_id": "cid", "client_secret": "sec"}
    assert (creds.client_id, creds.code_verifier) == ("cid", "verifier-1")
    assert creds.oauth_state == {"nonce": "n", "sessionId": "c", "serverId": "srv", "createdAt": 1}
    await store.patch_credentials("user-1", "c", {"code_verifier": None, "oauth_state": None})
    creds = await store.get_credentials("user-1", "c")
    assert creds is not None and creds.code_verifier is None and creds.oauth_state is None
    assert creds.tokens == {"access_token": "a2"}
    await store.clear_credentials("user-1", "c")
    creds = await store.get_credentials("user-1", "c")
    assert creds is not None and creds.tokens is None and creds.client_id is None
    assert await store.get("user-1", "c") is not None  # the session stays


async def test_delete_takes_the_credentials_with_it(store: SessionStore) -> None:
    await store.create(new("d"))
    await store.patch_credentials("user-1", "d", {"tokens": {"access_token": "x"}})
    await store.delete("user-1", "d")
    assert await store.get("user-1", "d") is None
    await store.create(new("d"))
    creds = await store.get_credentials("user-1", "d")
    assert creds is not None and creds.tokens is None


async def test_lists_and_clear_all(store: SessionStore) -> None:
    for sid, user in (("a1", "alice"), ("a2", "alice"), ("b1", "bob")):
        await store.create(new(sid, user=user))
    assert sorted(await store.list_ids("alice")) == ["a1", "a2"]
    assert sorted(s.session_id for s in await store.list("bob")) == ["b1"]
    assert sorted(await store.list_all_ids()) == ["a1", "a2", "b1"]
    await store.delete("alice", "a1")
    assert await store.list_ids("alice") == ["a2"]
    await store.clear_all()
    assert await store.list_all_ids() == []
    assert await store.list("alice") == []


async def test_bad_input_is_invalid_input(store: SessionStore) -> None:
    await store.create(new("v"))
    cases = [
        store.update("user-1", "v", {"user_id": "someone-else"}),
        store.update("user-1", "v", {"status": "failed"}),
        store.update("user-1", "v", {"headers": {"a": 1}}),
        store.patch_credentials("user-1", "v", {"access_token": "x"}),
        store.patch_credentials("user-1", "v", {"tokens": "not an object"}),
        store.create(new("", user="u")),
    ]
    for call in cases:
        with pytest.raises(errors.SessionStoreError) as e:
            await call
        assert e.value.code == errors.INVALID_INPUT
    s = await store.get("user-1", "v")
    assert s is not None and s.user_id == "user-1" and s.status == "pending"


def test_generated_ids_are_mcp_ts_shaped(store: SessionStore) -> None:
    ids = {store.generate_session_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"sess_[A-Za-z0-9_-]{21}", i) for i in ids)
