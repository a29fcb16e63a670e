"""Phoenix channel frames as Supabase Realtime speaks them.

* vsn 1.0.0: every frame a JSON object `{topic, event, payload, ref, join_ref}`;
* vsn 2.0.0: text frames are JSON arrays `[join_ref, ref, topic, event, payload]`, and user
  broadcasts may travel as binary frames — client→server kind 3 ("user broadcast push"),
  server→client kind 4 ("user broadcast") — with the header layout realtime-js 2.x writes and
  reads (`serializer.ts`; server `v2_serializer.ex`).

A user broadcast keeps its payload as bytes (JSON text or opaque binary), so a binary push is
relayed without being decoded; a vsn 1.0.0 receiver gets the JSON form, and cannot be sent a
binary payload at all (Supabase drops those for v1 sockets too).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

V1 = "1.0.0"
V2 = "2.0.0"
MAX_FRAME_BYTES = 5 * 1024 * 1024  # Supabase's websocket max_frame_size

_PUSH_KIND = 3
_BROADCAST_KIND = 4
_ENC_BINARY = 0
_ENC_JSON = 1


class ProtocolError(Exception):
    """A frame that cannot be read; Phoenix's transport closes the socket on these."""


@dataclass(frozen=True)
class UserBroadcast:
    """A broadcast whose user payload is kept as bytes."""

    event: str
    data: bytes
    is_json: bool
    meta: dict[str, Any] | None = None

    def as_json_payload(self) -> dict[str, Any] | None:
        """`{type, event, payload[, meta]}`, or None for an opaque binary payload."""
        if not self.is_json:
            return None
        try:
            inner = json.loads(self.data) if self.data else {}
        except ValueError:
            return None
        out: dict[str, Any] = {"type": "broadcast", "event": self.event, "payload": inner}
        if self.meta:
            out["meta"] = self.meta
        return out


@dataclass(frozen=True)
class Frame:
    topic: str
    event: str
    payload: Any  # a JSON value, or a UserBroadcast for binary broadcasts
    ref: str | None = None
    join_ref: str | None = None


def parse_vsn(value: str | None) -> str | None:
    """The serializer for `?vsn=`: Phoenix picks V1 for 1.x (and no vsn), V2 for 2.x."""
    if value is None or value == "":
        return V1
    major = value.split(".", 1)[0]
    return {"1": V1, "2": V2}.get(major)


def _ref(value: Any) -> str | None:
    # Refs are strings in both clients; be lenient with numbers, as Phoenix's JSON decode is.
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ProtocolError("ref must be a string")
    return str(value)


def decode_text(vsn: str, text: str) -> Frame:
    try:
        data = json.loads(text)
    except ValueError as e:
        raise ProtocolError(f"invalid JSON: {e}") from None
    if vsn == V2:
        if not isinstance(data, list) or len(data) < 5:
            raise ProtocolError("expected V2 array [join_ref, ref, topic, event, payload]")
        join_ref, ref, topic, event, payload = data[:5]
    else:
        if not isinstance(data, dict) or not {"topic", "event", "payload", "ref"} <= data.keys():
            raise ProtocolError("expected a message object {topic, event, payload, ref}")
        topic, event, payload = data["topic"], data["event"], data["payload"]
        ref, join_ref = data["ref"], data.get("join_ref")
    if not isinstance(topic, str) or not isinstance(event, str):
        raise ProtocolError("topic and event must be strings")
    return Frame(topic, event, payload, _ref(ref), _ref(join_ref))


def decode_binary(vsn: str, data: bytes) -> Frame:
    """A kind-3 user broadcast push (the only binary frame a client sends)."""
    if vsn != V2:
        raise ProtocolError("binary frames need vsn 2.0.0")
    if len(data) < 7 or data[0] != _PUSH_KIND:
        raise ProtocolError("unknown binary frame kind")
    _, jr_len, ref_len, topic_len, ev_len, meta_len, encoding = struct.unpack_from("7B", data)
    if encoding not in (_ENC_BINARY, _ENC_JSON):
        raise ProtocolError("unknown payload encoding")
    pos = 7
    parts: list[str] = []
    for size in (jr_len, ref_len, topic_len, ev_len, meta_len):
        chunk = data[pos : pos + size]
        if len(chunk) != size:
            raise ProtocolError("truncated binary frame")
        try:
            parts.append(chunk.decode())
        except UnicodeDecodeError:
            raise ProtocolError("header fields must be UTF-8") from None
        pos += size
    join_ref, ref, topic, event, meta_text = parts
    meta: dict[str, Any] | None = None
    if meta_text:
        try:
            loaded = json.loads(meta_text)
        except ValueError:
            raise ProtocolError("metadata must be JSON") from None
        if not isinstance(loaded, dict):
            raise ProtocolError("metadata must be a JSON object")
        meta = loaded
    body = bytes(data[pos:])
    if encoding == _ENC_JSON:
        try:
            json.loads(body)
        except ValueError:
            raise ProtocolError("JSON payload is not JSON") from None
    return Frame(
        topic, "broadcast", UserBroadcast(event, body, encoding == _ENC_JSON, meta),
        ref or None, join_ref or None,
    )  # fmt: skip


def dumps(value: Any) -> str:
    """Compact JSON, as every frame is written."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def encode(vsn: str, frame: Frame) -> str | bytes | None:
    """The frame as this socket's serializer writes it; None when it cannot carry it."""
    payload = frame.payload
    if isinstance(payload, UserBroadcast):
        if vsn == V2:
            return encode_user_broadcast(frame.topic, payload)
        payload = payload.as_json_payload()
        if payload is None:
            return None
    if vsn == V2:
        return dumps([frame.join_ref, frame.ref, frame.topic, frame.event, payload])
    return dumps(
        {"topic": frame.topic, "event": frame.event, "payload": payload,
         "ref": frame.ref, "join_ref": frame.join_ref}
    )  # fmt: skip


def encode_change(vsn: str, topic: str, ids: list[int], data: str) -> str:
    """A `postgres_changes` push, as `encode` writes it, around `data` already encoded: a
    change reaches many subscribers, and only the topic and ids differ between them."""
    body = '{"ids":[' + ",".join(map(str, ids)) + '],"data":' + data + "}"
    if vsn == V2:
        return "[null,null," + dumps(topic) + ',"postgres_changes",' + body + "]"
    return (
        '{"topic":' + dumps(topic) + ',"event":"postgres_changes","payload":' + body
        + ',"ref":null,"join_ref":null}'
    )  # fmt: skip


def encode_user_broadcast(topic: str, b: UserBroadcast) -> bytes:
    t, e = topic.encode(), b.event.encode()
    m = dumps(b.meta).encode() if b.meta else b""
    if max(len(t), len(e), len(m)) > 255:
        raise ProtocolError("topic, event and metadata must be at most 255 bytes")
    head = struct.pack("5B", _BROADCAST_KIND, len(t), len(e), len(m), _ENC_JSON if b.is_json else 0)
    return head + t + e + m + b.data


def encode_push(
    topic: str, event: str, payload: bytes, *, join_ref: str = "", ref: str = "",
    is_json: bool = True, meta: dict[str, Any] | None = None,
) -> bytes:  # fmt: skip
    """A kind-3 frame, as realtime-js sends it (for tests and the benchmark client)."""
    fields = [join_ref.encode(), ref.encode(), topic.encode(), event.encode(),
              dumps(meta).encode() if meta else b""]  # fmt: skip
    head = struct.pack("7B", _PUSH_KIND, *(len(f) for f in fields), 1 if is_json else 0)
    return head + b"".join(fields) + payload


def decode_user_broadcast(data: bytes) -> Frame:
    """A kind-4 frame as realtime-js decodes it (for tests and the benchmark client)."""
    if len(data) < 5 or data[0] != _BROADCAST_KIND:
        raise ProtocolError("not a user broadcast frame")
    _, t_len, e_len, m_len, encoding = struct.unpack_from("5B", data)
    pos = 5
    topic = data[pos : pos + t_len].decode()
    pos += t_len
    event = data[pos : pos + e_len].decode()
    pos += e_len
    meta = json.loads(data[pos : pos + m_len]) if m_len else None
    pos += m_len
    body = data[pos:]
    inner: Any = json.loads(body) if encoding == _ENC_JSON else body
    payload: dict[str, Any] = {"type": "broadcast", "event": event, "payload": inner}
    if meta:
        payload["meta"] = meta
    return Frame(topic, "broadcast", payload)


def reply(frame: Frame, status: str, response: Any) -> Frame:
    """A `phx_reply` to `frame`."""
    return Frame(
        frame.topic, "phx_reply", {"status": status, "response": response},
        frame.ref, frame.join_ref,
    )  # fmt: skip
