"""Joins per second and presence rate limits, as Supabase Realtime enforces them.

Supabase averages joins and presence events per second over the last minute, sampled every
5 seconds (`Realtime.RateCounter`), so a limit trips at the end of the tick that went over it
and lifts at the end of a tick that brings the average back under.  Each live test here has a
server of its own, so its counters start fresh and the ticks fall at known times.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from realtime import RealtimeSubscribeStates
from supalite.config import load_settings
from supalite.realtime.limits import TICK, RateCounter
from tests.realtime.conftest import RT, py_client, serving, start_rt, unique

JOIN_LIMITED = "ClientJoinRateLimitReached: Too many joins per second"


@pytest.fixture(scope="module")
def joins_rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RT]:
    root = tmp_path_factory.mktemp("rt-joins")
    yield from serving(start_rt(root, TENANT_MAX_JOINS_PER_SECOND="1"))


@pytest.fixture(scope="module")
def presence_rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RT]:
    yield from serving(
        start_rt(
            tmp_path_factory.mktemp("rt-presence"),
            {"realtime": {"params": {"maxPresenceEventsPerSecond": 1}}},
            CLIENT_PRESENCE_WINDOW_MS="3000",  # the count stays Supabase's default, 5
        )
    )


@pytest.fixture(scope="module")
def retrack_rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RT]:
    """Presence limited to 1/s, counters untouched by the other tests."""
    root = tmp_path_factory.mktemp("rt-retrack")
    yield from serving(start_rt(root, {"realtime": {"params": {"maxPresenceEventsPerSecond": 1}}}))


async def _until(deadline: float) -> None:
    await asyncio.sleep(max(0.0, deadline - time.monotonic()))


def _presence(event: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"type": "presence", "event": event}
    if payload is not None:
        msg["payload"] = payload
    return msg


# ---------------------------------------------------------------------- the counter itself


def test_rate_counter_averages_ticks_over_the_last_minute() -> None:
    now = [1000.0]
    c = RateCounter(lambda: now[0])
    for _ in range(30):
        c.add()
    assert c.avg == 0  # judged only when its tick ends
    now[0] += TICK
    assert c.avg == 30 / TICK
    now[0] += TICK  # an empty tick halves it: the average is over the ticks kept
    assert c.avg == 30 / TICK / 2
    now[0] += 11 * TICK  # the busy tick has left the last minute
    assert c.avg == 0
    c.add(60)
    now[0] += TICK
    assert c.avg == 60 / TICK / 12
    now[0] += 300  # idle for 5 minutes: a fresh counter, as Supabase restarts idle ones
    c.add(10)
    now[0] += TICK
    assert c.avg == 10 / TICK


def _limits(s: Any) -> tuple[int, int, int, int]:
    r = s.realtime
    return (r.max_joins_per_second, r.max_presence_events_per_second,
            r.max_client_presence_events_per_window, r.client_presence_window_ms)  # fmt: skip


def test_settings_from_env_and_json(tmp_path: Path) -> None:
    assert _limits(load_settings(tmp_path, env={})) == (100, 1000, 5, 30_000)
    params = {"maxJoinsPerSecond": 7, "maxPresenceEventsPerSecond": 8,
              "maxClientPresenceEventsPerWindow": 9, "clientPresenceWindowMs": 1000}  # fmt: skip
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"supabase": {"realtime": {"params": params}}}))
    s = load_settings(tmp_path, config_file=path, env={"CLIENT_PRESENCE_MAX_CALLS": "3"})
    assert _limits(s) == (7, 8, 3, 1000)
    s = load_settings(tmp_path, env={"TENANT_MAX_JOINS_PER_SECOND": "2",
                                     "CLIENT_PRESENCE_WINDOW_MS": "500"})  # fmt: skip
    assert (s.realtime.max_joins_per_second, s.realtime.client_presence_window_ms) == (2, 500)


# ---------------------------------------------------------------------- joins per second


async def _track_on_new_channel(s: Any, meta: dict[str, Any]) -> tuple[str, str]:
    """Joins a new channel and tracks `meta` on it: the channel's name and the track's ref."""
    name = unique()
    join_ref, reply = await s.join(name)
    assert reply["status"] == "ok"
    ref = await s.send(f"realtime:{name}", "presence", _presence("track", meta), join_ref=join_ref)
    return name, ref


async def _closed_with(s: Any, name: str, message: str) -> None:
    """The channel `name` is closed by the server: the system error, then phx_close."""
    topic = f"realtime:{name}"
    system = await s.event(topic, "system")
    assert system["payload"] == {
        "extension": "system", "status": "error", "message": message, "channel": name,
    }  # fmt: skip
    await s.event(topic, "phx_close")


async def test_joins_per_second(joins_rt: RT) -> None:
    """Limit 1/s: six joins in one tick average 1.2/s; the next (empty) tick brings 0.6."""
    py = await py_client(joins_rt)  # connected while joins are allowed
    s = await joins_rt.socket("2.0.0")
    try:
        first = time.monotonic()
        for _ in range(6):  # under the limit until the tick ends: every join is accepted
            _, reply = await s.join(unique())
            assert reply["status"] == "ok"
        await _until(first + TICK + 0.5)

        # Over: a new socket is refused at the handshake, as Supabase's connect check does...
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(joins_rt.ws_url("2.0.0"))
        assert refused.value.response.status_code == 429
        assert json.loads(refused.value.response.body or b"") == {
            "error": "Too many joins per second"
        }
        # ...and a join on a connected socket gets the reason, then the socket is closed.
        _, reply = await s.join(unique())
        assert reply == {"status": "error", "response": {"reason": JOIN_LIMITED}}
        await asyncio.wait_for(s.ws.wait_closed(), 5)
        assert s.ws.close_code == 1000
        # realtime-py surfaces the reason as CHANNEL_ERROR.
        states: list[tuple[Any, str]] = []
        await py.channel(unique()).subscribe(lambda st, e: states.append((st, str(e))))
        assert states[0] == (RealtimeSubscribeStates.CHANNEL_ERROR,
                             json.dumps({"reason": JOIN_LIMITED}))  # fmt: skip

        # The next tick is empty: the average (6 joins over 2 ticks) is under the limit again.
        await _until(first + 2 * TICK + 0.5)
        again = await joins_rt.socket("2.0.0")
        try:
            _, reply = await again.join(unique())
            assert reply["status"] == "ok"
        finally:
            await again.close()
    finally:
        await s.close()
        await py.close()


async def test_topic_name_required_comes_first(joins_rt: RT) -> None:
    s = await joins_rt.socket()
    try:
        _, reply = await s.join("")
        assert reply["response"] == {"reason": "TopicNameRequired: You must provide a topic name"}
    finally:
        await s.close()


# ---------------------------------------------------------------------- presence


async def test_presence_events_per_second(presence_rt: RT) -> None:
    """Limit 1/s (`avg > limit`): presence_state at join, tracks and the diffs delivered count."""
    s = await presence_rt.socket()
    try:
        first = time.monotonic()
        for _ in range(2):  # 2 × (presence_state + track + own diff) = 6 events: 1.2/s
            name = unique()
            join_ref, reply = await s.join(name, {"presence": {"key": "k", "enabled": True}})
            assert reply["status"] == "ok"
            await s.event(f"realtime:{name}", "presence_state")
            ref = await s.send(f"realtime:{name}", "presence", _presence("track", {"n": 1}),
                               join_ref=join_ref)  # fmt: skip
            assert (await s.reply(ref))["status"] == "ok"
            await s.event(f"realtime:{name}", "presence_diff")
        await _until(first + TICK + 0.5)

        # Over: a track closes its channel...
        name, ref = await _track_on_new_channel(s, {"n": 2})
        await _closed_with(s, name, "Too many presence messages per second")
        await s.nothing(lambda m: m["event"] == "phx_reply" and m["ref"] == ref, wait=0.3)
        # ...and so does a join with presence, once its reply is out; untrack is not limited.
        name = unique()
        _, reply = await s.join(name, {"presence": {"key": "", "enabled": True}})
        assert reply["status"] == "ok"
        await _closed_with(s, name, "Too many presence messages per second")
        name = unique()
        join_ref, _ = await s.join(name)
        ref = await s.send(f"realtime:{name}", "presence", _presence("untrack"),
                           join_ref=join_ref)  # fmt: skip
        assert (await s.reply(ref))["status"] == "ok"

        # The next tick is empty: 6 events over 2 ticks is 0.6/s, under the limit again.
        await _until(first + 2 * TICK + 0.5)
        _, ref = await _track_on_new_channel(s, {"n": 3})
        assert await s.reply(ref) == {"status": "ok", "response": {}}
    finally:
        await s.close()


async def test_client_presence_messages_per_window(presence_rt: RT) -> None:
    """Supabase's default 5 presence messages per channel per window (here 3 s)."""
    s = await presence_rt.socket()
    try:
        name = unique()
        join_ref, _ = await s.join(name)
        topic = f"realtime:{name}"
        start = time.monotonic()
        for _ in range(5):  # untrack: counted per channel, not towards the project's rate
            ref = await s.send(topic, "presence", _presence("untrack"), join_ref=join_ref)
            assert await s.reply(ref) == {"status": "ok", "response": {}}
        # A message without an event is answered and not counted, as on Supabase.
        ref = await s.send(topic, "presence", {"type": "presence"}, join_ref=join_ref)
        assert await s.reply(ref) == {"status": "ok", "response": {}}
        assert time.monotonic() - start < 2.5, "too slow to test a 3 s window"
        ref = await s.send(topic, "presence", _presence("track", {}), join_ref=join_ref)
        await _closed_with(s, name, "Client presence rate limit exceeded")
        await s.nothing(lambda m: m["event"] == "phx_reply" and m["ref"] == ref, wait=0.3)

        # Another channel has its own window, and a window ends after its 3 s.
        name = unique()
        join_ref, _ = await s.join(name)
        topic = f"realtime:{name}"
        start = time.monotonic()
        for _ in range(5):
            ref = await s.send(topic, "presence", _presence("untrack"), join_ref=join_ref)
            assert (await s.reply(ref))["status"] == "ok"
        await _until(start + 3.2)
        for _ in range(5):
            ref = await s.send(topic, "presence", _presence("untrack"), join_ref=join_ref)
            assert (await s.reply(ref))["status"] == "ok"
    finally:
        await s.close()


async def test_client_presence_limit_through_realtime_py(presence_rt: RT) -> None:
    py = await py_client(presence_rt)
    try:
        states: list[tuple[Any, str]] = []
        ch = py.channel(unique())
        await ch.subscribe(lambda st, e: states.append((st, str(e))))
        assert states == [(RealtimeSubscribeStates.SUBSCRIBED, "None")]
        for _ in range(6):
            await ch.untrack()
        deadline = time.monotonic() + 10
        while len(states) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        state, error = states[1]
        assert state == RealtimeSubscribeStates.CHANNEL_ERROR
        assert json.loads(error)["message"] == "Client presence rate limit exceeded"
    finally:
        await py.close()


async def test_identical_track_not_counted_as_presence_event(retrack_rt: RT) -> None:
    """Supabase returns `:no_payload_change` before `limit_presence_event`: a re-track of the
    same payload costs the project nothing, though the channel's own window counts it."""
    s = await retrack_rt.socket()
    try:
        first = time.monotonic()
        name = unique()
        topic = f"realtime:{name}"
        join_ref, _ = await s.join(name, {"presence": {"key": "k", "enabled": True}})
        await s.event(topic, "presence_state")
        ref = await s.send(topic, "presence", _presence("track", {"n": 1}), join_ref=join_ref)
        assert (await s.reply(ref))["status"] == "ok"
        await s.event(topic, "presence_diff")  # 3 events: state, track, diff (0.6/s)
        for _ in range(4):  # counted, these would add 8 more (2.2/s)
            ref = await s.send(topic, "presence", _presence("track", {"n": 1}),
                               join_ref=join_ref)  # fmt: skip
            assert await s.reply(ref) == {"status": "ok", "response": {}}
        # The channel's window (5 per 30 s) is full: its next message closes it.
        ref = await s.send(topic, "presence", _presence("track", {"n": 1}), join_ref=join_ref)
        await _closed_with(s, name, "Client presence rate limit exceeded")
        await _until(first + TICK + 0.5)

        # The tick has ended at 0.6/s, under the limit: a new track is accepted.
        _, ref = await _track_on_new_channel(s, {"n": 2})
        assert await s.reply(ref) == {"status": "ok", "response": {}}
    finally:
        await s.close()
