"""The websocket: connecting, heartbeats, joining and leaving, errors and bad input."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jwt
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.realtime.conftest import ALICE, RT, unique


async def test_heartbeat_v1_and_v2(sockets: Any) -> None:
    for vsn in ("1.0.0", "2.0.0"):
        s = await sockets(vsn)
        ref = await s.send("phoenix", "heartbeat", {})
        assert await s.reply(ref) == {"status": "ok", "response": {}}


async def test_frames_are_not_compressed(sockets: Any) -> None:
    # As Supabase's Phoenix endpoint: a client offering permessage-deflate (websockets and
    # browsers do) gets plain frames, so the server never deflates a frame per socket.
    s = await sockets()
    assert s.ws.response.headers.get("Sec-WebSocket-Extensions") is None
    assert s.ws.protocol.extensions == []


async def test_join_reply_and_leave(sockets: Any) -> None:
    s = await sockets("2.0.0")
    name = unique()
    join_ref, reply = await s.join(name)
    assert reply == {"status": "ok", "response": {"postgres_changes": []}}
    ref = await s.send(f"realtime:{name}", "phx_leave", {}, join_ref=join_ref)
    assert await s.reply(ref) == {"status": "ok", "response": {}}
    close = await s.event(f"realtime:{name}", "phx_close")
    assert close["join_ref"] == join_ref and close["ref"] == join_ref
    # Left: pushes to the topic are now unmatched, as Phoenix answers them.
    ref = await s.send(f"realtime:{name}", "broadcast", {"type": "broadcast", "event": "x"})
    assert await s.reply(ref) == {"status": "error", "response": {"reason": "unmatched topic"}}


async def test_join_errors(sockets: Any, rt: RT) -> None:
    s = await sockets()
    _, reply = await s.join("")
    assert reply == {
        "status": "error",
        "response": {"reason": "TopicNameRequired: You must provide a topic name"},
    }
    ref = await s.send("room:x", "phx_join", {}, join_ref="9")
    assert await s.reply(ref) == {"status": "error", "response": {"reason": "unmatched topic"}}
    _, reply = await s.join(unique(), token=rt.token(ALICE, ttl=-120))
    assert reply["status"] == "error"
    assert reply["response"]["reason"].startswith("InvalidJWTToken: Token has expired 1")
    _, reply = await s.join(unique(), token="not-a-jwt")
    assert reply["response"] == {"reason": "MalformedJWT: The token provided is not a valid JWT"}
    forged = rt.token(ALICE)[:-4] + "AAAA"
    _, reply = await s.join(unique(), token=forged)
    assert reply["response"] == {"reason": "JwtSignatureError: Failed to validate JWT signature"}
    no_exp = jwt.encode({"sub": ALICE, "role": "authenticated"}, rt.secret, algorithm="HS256")
    _, reply = await s.join(unique(), token=no_exp)
    assert reply["response"] == {
        "reason": "InvalidJWTToken: Fields `role` and `exp` are required in JWT"
    }
    # The socket is still usable after all of these.
    ref = await s.send("phoenix", "heartbeat", {})
    assert (await s.reply(ref))["status"] == "ok"


async def test_duplicate_join_replaces_the_channel(sockets: Any) -> None:
    s = await sockets()
    name = unique()
    first, _ = await s.join(name)
    second, reply = await s.join(name)
    assert reply["status"] == "ok"
    close = await s.event(f"realtime:{name}", "phx_close")
    assert close["join_ref"] == first != second


async def test_handshake_refusals(rt: RT) -> None:
    for url, status in [
        (rt.ws_url(apikey="nope"), 401),
        (rt.ws_url().split("?")[0] + "?vsn=1.0.0", 401),
        (rt.ws_url(vsn="9.0.0"), 403),
    ]:
        with pytest.raises(InvalidStatus) as e:
            await websockets.connect(url)
        assert e.value.response.status_code == status
        if status == 401:
            assert "error" in json.loads(e.value.response.body)


@pytest.mark.parametrize(
    ("vsn", "frame", "code"),
    [
        ("1.0.0", "{not json", 1007),
        ("1.0.0", '["1","1","realtime:a","phx_join",{}]', 1007),  # a v2 frame on a v1 socket
        ("2.0.0", '{"topic":"a","event":"b","payload":{},"ref":"1"}', 1007),
        ("2.0.0", b"\x09garbage", 1007),
        ("1.0.0", b"\x03\x00\x00\x01\x01\x00\x01ae{}", 1007),  # binary needs vsn 2.0.0
    ],
)
async def test_unreadable_frames_close_the_socket(
    sockets: Any, rt: RT, vsn: str, frame: str | bytes, code: int
) -> None:
    s = await sockets(vsn)
    await s.ws.send(frame)
    with pytest.raises(ConnectionClosed) as e:
        while True:
            await s.ws.recv()
    assert e.value.rcvd is not None and e.value.rcvd.code == code
    # Nothing else is affected: the server answers on a new socket and over HTTP.
    t = await sockets(vsn)
    ref = await t.send("phoenix", "heartbeat", {})
    assert (await t.reply(ref))["status"] == "ok"
    assert httpx.get(rt.server.url + "/health").status_code == 200


async def test_oversized_frame_closes_the_socket(sockets: Any) -> None:
    s = await sockets()
    big = {
        "topic": "phoenix",
        "event": "heartbeat",
        "payload": {"x": "a" * (5 * 1024 * 1024)},
        "ref": "1",
    }
    await s.ws.send(json.dumps(big))
    with pytest.raises(ConnectionClosed) as e:
        while True:
            await s.ws.recv()
    assert e.value.rcvd is not None and e.value.rcvd.code == 1009


async def test_odd_but_readable_input_is_answered_not_fatal(sockets: Any) -> None:
    s = await sockets()
    name = unique()
    join_ref, _ = await s.join(name)
    topic = f"realtime:{name}"
    # Unknown events and payloads of the wrong type are ignored; the channel lives on.
    await s.send(topic, "whatever", {"a": 1}, join_ref=join_ref)
    await s.send(topic, "broadcast", "not an object", join_ref=join_ref)
    await s.send(topic, "access_token", [1, 2], join_ref=join_ref)
    ref = await s.send(
        topic, "presence", {"type": "presence", "event": "track", "payload": [1]}, join_ref=join_ref
    )
    assert await s.reply(ref) == {
        "status": "error",
        "response": {"reason": "Presence track payload must be a map"},
    }
    # A join whose payload is not an object still joins (Supabase applies defaults).
    ref = await s.send(f"realtime:{unique()}", "phx_join", "x", join_ref="77")
    assert (await s.reply(ref))["status"] == "ok"
    ref = await s.send("phoenix", "heartbeat", {})
    assert (await s.reply(ref))["status"] == "ok"


async def test_token_expiry_closes_the_channel(sockets: Any, rt: RT) -> None:
    s = await sockets("2.0.0")
    name = unique()
    join_ref, reply = await s.join(name, token=rt.token(ALICE, ttl=2))
    assert reply["status"] == "ok"
    system = await s.event(f"realtime:{name}", "system", timeout=15)
    assert system["payload"]["extension"] == "system"
    assert system["payload"]["status"] == "error"
    assert system["payload"]["message"].startswith("Token has expired")
    assert system["payload"]["channel"] == name
    close = await s.event(f"realtime:{name}", "phx_close")
    assert close["join_ref"] == join_ref


async def test_access_token_swaps_and_bad_token_closes(sockets: Any, rt: RT) -> None:
    s = await sockets()
    name = unique()
    topic = f"realtime:{name}"
    join_ref, _ = await s.join(name, token=rt.token(ALICE, ttl=3))
    # A fresh token before expiry keeps the channel open past the first token's expiry.
    await s.send(topic, "access_token", {"access_token": rt.token(ALICE)}, join_ref=join_ref)
    await s.nothing(lambda m: m["event"] in ("system", "phx_close"), wait=5)
    # A malformed one closes it, with the reason.
    await s.send(topic, "access_token", {"access_token": "garbage"}, join_ref=join_ref)
    system = await s.event(topic, "system")
    assert system["payload"]["message"] == "The token provided is not a valid JWT"
    await s.event(topic, "phx_close")
