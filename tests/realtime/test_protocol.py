"""Phoenix frames, filters and the pgoutput reader, without a server."""

from __future__ import annotations

import json
import struct

import pytest

from supalite.realtime import protocol
from supalite.realtime.changes import parse_filter, parse_subscription, subscription_id
from supalite.realtime.pgoutput import UNCHANGED, Change, Commit, Decoder, Relation
from supalite.realtime.protocol import Frame, ProtocolError, UserBroadcast


def test_v1_object_round_trip() -> None:
    f = protocol.decode_text(
        "1.0.0",
        json.dumps(
            {
                "topic": "realtime:a",
                "event": "phx_join",
                "payload": {"x": 1},
                "ref": "1",
                "join_ref": "1",
            }
        ),
    )
    assert f == Frame("realtime:a", "phx_join", {"x": 1}, "1", "1")
    out = json.loads(protocol.encode("1.0.0", protocol.reply(f, "ok", {})))  # type: ignore[arg-type]
    assert out == {
        "topic": "realtime:a",
        "event": "phx_reply",
        "ref": "1",
        "join_ref": "1",
        "payload": {"status": "ok", "response": {}},
    }


def test_v2_array_round_trip() -> None:
    f = protocol.decode_text("2.0.0", '["3","4","realtime:a","broadcast",{"type":"broadcast"}]')
    assert f == Frame("realtime:a", "broadcast", {"type": "broadcast"}, "4", "3")
    assert json.loads(protocol.encode("2.0.0", f)) == [  # type: ignore[arg-type]
        "3",
        "4",
        "realtime:a",
        "broadcast",
        {"type": "broadcast"},
    ]


@pytest.mark.parametrize(
    ("vsn", "text"),
    [
        ("1.0.0", "not json"),
        ("1.0.0", "[1,2,3,4,5]"),
        ("1.0.0", '{"topic": "a", "event": "b"}'),
        ("1.0.0", '{"topic": 1, "event": "b", "payload": {}, "ref": null}'),
        ("2.0.0", '{"topic": "a", "event": "b", "payload": {}, "ref": null}'),
        ("2.0.0", '["1", "2", "a"]'),
        ("2.0.0", '[null, {"x": 1}, "a", "b", {}]'),
    ],
)
def test_unreadable_text_frames(vsn: str, text: str) -> None:
    with pytest.raises(ProtocolError):
        protocol.decode_text(vsn, text)


def _push_bytes(
    join_ref: bytes, ref: bytes, topic: bytes, event: bytes, meta: bytes, encoding: int, body: bytes
) -> bytes:
    # Byte layout written out as realtime-js's serializer.ts does it, independently of ours.
    head = bytes([3, len(join_ref), len(ref), len(topic), len(event), len(meta), encoding])
    return head + join_ref + ref + topic + event + meta + body


def test_binary_push_json_and_binary() -> None:
    raw = _push_bytes(b"1", b"2", b"realtime:r", "ünï".encode(), b"", 1, b'{"a":[1,2]}')
    f = protocol.decode_binary("2.0.0", raw)
    assert (f.topic, f.event, f.ref, f.join_ref) == ("realtime:r", "broadcast", "2", "1")
    assert f.payload == UserBroadcast("ünï", b'{"a":[1,2]}', True, None)
    raw = _push_bytes(b"", b"", b"realtime:r", b"blob", b'{"id":"x"}', 0, b"\x00\xff")
    f = protocol.decode_binary("2.0.0", raw)
    assert f.payload == UserBroadcast("blob", b"\x00\xff", False, {"id": "x"})
    assert f.ref is None and f.join_ref is None
    assert (
        protocol.encode_push("realtime:r", "blob", b"\x00\xff", meta={"id": "x"}, is_json=False)
        == raw
    )


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x04\x00\x00\x00\x00",  # server kind, not a client push
        b"\x03\x05\x00\x00\x00\x00\x01ab",  # join_ref longer than the frame
        _push_bytes(b"", b"", b"t", b"e", b"", 7, b"{}"),  # unknown encoding
        _push_bytes(b"", b"", b"t", b"e", b"", 1, b"{nope"),  # JSON that is not
        _push_bytes(b"", b"", b"t", b"e", b"[1]", 1, b"{}"),  # metadata not an object
        _push_bytes(b"", b"", b"\xff", b"e", b"", 1, b"{}"),  # topic not UTF-8
    ],
)
def test_unreadable_binary_frames(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        protocol.decode_binary("2.0.0", raw)


def test_binary_needs_v2() -> None:
    with pytest.raises(ProtocolError):
        protocol.decode_binary("1.0.0", protocol.encode_push("realtime:r", "e", b"{}"))


def test_user_broadcast_frames() -> None:
    b = UserBroadcast("ev", b'{"n":1}', True, {"id": "m1"})
    out = protocol.encode("2.0.0", Frame("realtime:r", "broadcast", b))
    assert isinstance(out, bytes)
    # realtime-js's decoder: kind 4, topic/event/meta lengths, encoding, then the fields.
    assert out[:5] == bytes([4, len("realtime:r"), 2, len('{"id":"m1"}'), 1])
    assert protocol.decode_user_broadcast(out).payload == {
        "type": "broadcast",
        "event": "ev",
        "payload": {"n": 1},
        "meta": {"id": "m1"},
    }
    # vsn 1.0.0 gets the JSON form; an opaque binary payload cannot be carried at all.
    v1 = json.loads(protocol.encode("1.0.0", Frame("realtime:r", "broadcast", b)))  # type: ignore[arg-type]
    assert v1["payload"] == {
        "type": "broadcast",
        "event": "ev",
        "payload": {"n": 1},
        "meta": {"id": "m1"},
    }
    assert (
        protocol.encode("1.0.0", Frame("t", "broadcast", UserBroadcast("e", b"\x01", False)))
        is None
    )


@pytest.mark.parametrize("vsn", ["1.0.0", "2.0.0"])
def test_change_push_encoded_around_shared_data(vsn: str) -> None:
    # A change is encoded once and reused by every subscriber it reaches; the frame around it
    # must be byte for byte what `encode` writes for the same push.
    data = {"schema": "public", "table": "t", "type": "INSERT", "record": {"s": "é \"q\"\n"},
            "columns": [{"name": "s", "type": "text"}], "errors": None}  # fmt: skip
    topic = 'realtime:ro"om/é'
    want = protocol.encode(vsn, Frame(topic, "postgres_changes", {"ids": [7, 9], "data": data}))
    assert protocol.encode_change(vsn, topic, [7, 9], protocol.dumps(data)) == want


def test_vsn() -> None:
    assert protocol.parse_vsn(None) == "1.0.0"
    assert protocol.parse_vsn("2.0.0") == "2.0.0"
    assert protocol.parse_vsn("1.0.0") == "1.0.0"
    assert protocol.parse_vsn("3.0.0") is None


def test_filters() -> None:
    assert parse_filter("id=eq.5") == (("id", "eq", "5"),)
    assert parse_filter("email=eq.a.b@c.d") == (("email", "eq", "a.b@c.d"),)
    assert parse_filter("id=in.(1, 2,3)") == (("id", "in", ("1", "2", "3")),)
    for bad in ("id", "id=5", "id=like.5", "=eq.1", "id=in.1,2"):
        with pytest.raises(ValueError):
            parse_filter(bad)
    sub = parse_subscription(
        {"event": "insert", "schema": "public", "table": "t", "filter": "n=gte.3"}
    )
    assert (sub.event, sub.table, sub.filters) == ("INSERT", "t", (("n", "gte", "3"),))
    assert parse_subscription({"event": "*", "schema": "public"}).table is None
    for bad in (
        {"event": "TRUNCATE"},
        {"event": "*", "schema": 1},
        "x",
        {"event": "*", "schema": "*", "filter": "id=eq.1"},
    ):
        with pytest.raises(ValueError):
            parse_subscription(bad)
    # Equal params, equal ids: the client matches the reply's ids to its bindings.
    assert subscription_id({"a": 1, "b": 2}) == subscription_id({"b": 2, "a": 1})
    assert subscription_id({"a": 1}) != subscription_id({"a": 2})


def _s(text: str) -> bytes:
    return text.encode() + b"\0"


def test_pgoutput_messages() -> None:
    d = Decoder()
    rel = (
        b"R"
        + struct.pack("!I", 42)
        + _s("public")
        + _s("t")
        + b"d"
        + struct.pack("!h", 3)
        + b"\x01"
        + _s("id")
        + struct.pack("!Ii", 23, -1)
        + b"\x00"
        + _s("doc")
        + struct.pack("!Ii", 3802, -1)
        + b"\x00"
        + _s("big")
        + struct.pack("!Ii", 25, -1)
    )
    r = d.decode(rel)
    assert isinstance(r, Relation)
    assert (r.schema, r.name, r.columns, r.key, r.types) == (
        "public",
        "t",
        ["id", "doc", "big"],
        ["id"],
        [23, 3802, 25],
    )

    def tup(*vals: bytes | str | None) -> bytes:
        out = struct.pack("!h", len(vals))
        for v in vals:
            if v is None:
                out += b"n"
            elif v == "u":
                out += b"u"
            else:
                assert isinstance(v, bytes)
                out += b"t" + struct.pack("!i", len(v)) + v
        return out

    ins = d.decode(b"I" + struct.pack("!I", 42) + b"N" + tup(b"1", b'{"a":1}', None))
    assert isinstance(ins, Change)
    assert ins.kind == "INSERT" and ins.new == {"id": "1", "doc": '{"a":1}', "big": None}
    upd = d.decode(
        b"U" + struct.pack("!I", 42) + b"K" + tup(b"1", None, None) + b"N" + tup(b"2", b"{}", "u")
    )
    assert isinstance(upd, Change)
    assert upd.old == {"id": "1"} and upd.new == {"id": "2", "doc": "{}", "big": UNCHANGED}
    dele = d.decode(b"D" + struct.pack("!I", 42) + b"O" + tup(b"2", b"{}", b"x"))
    assert isinstance(dele, Change) and dele.old == {"id": "2", "doc": "{}", "big": "x"}
    c = d.decode(b"C" + struct.pack("!bqqq", 0, 100, 120, 0))
    assert isinstance(c, Commit) and (c.commit_lsn, c.end_lsn) == (100, 120)
    assert c.commit_time.year == 2000
    with pytest.raises(ValueError):
        d.decode(b"I" + struct.pack("!I", 7) + b"N" + tup(b"1"))  # unknown relation
