"""The pgoutput logical replication format (protocol version 1), as read from
`pg_logical_slot_peek_binary_changes`: one message per row, network byte order, strings
NUL-terminated, column values in their text output form.

Only what Realtime needs is kept: relations (names, columns, which are key columns, replica
identity), transaction boundaries with the commit timestamp, and row changes.  Values stay text
(`None` for NULL); the database turns them back into typed JSON when it checks each subscriber
(see `sql.py`), so no type is re-implemented here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


class Unchanged:
    """An unchanged TOASTed value in an UPDATE: pgoutput does not resend it."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED = Unchanged()
Value = str | None | Unchanged


@dataclass
class Relation:
    oid: int
    schema: str
    name: str
    replica_identity: str  # d(efault) n(othing) f(ull) i(ndex)
    columns: list[str]
    key: list[str]  # the replica identity's columns (the primary key by default)
    types: list[int]  # type oids, by column


@dataclass
class Begin:
    final_lsn: int
    commit_time: datetime
    xid: int


@dataclass
class Commit:
    commit_lsn: int
    end_lsn: int
    commit_time: datetime


@dataclass
class Change:
    kind: str  # INSERT | UPDATE | DELETE
    relation: Relation
    new: dict[str, Value] | None = None
    old: dict[str, Value] | None = None  # key columns, or the full row under REPLICA IDENTITY FULL


@dataclass
class Decoder:
    """Keeps the relation cache a stream needs (pgoutput sends each relation once)."""

    relations: dict[int, Relation] = field(default_factory=dict)

    def decode(self, data: bytes) -> Begin | Commit | Change | Relation | None:
        kind = data[:1]
        r = _Reader(data, 1)
        if kind == b"B":
            final_lsn, ts, xid = r.unpack("!qqI")
            return Begin(final_lsn, _ts(ts), xid)
        if kind == b"C":
            _flags, commit_lsn, end_lsn, ts = r.unpack("!bqqq")
            return Commit(commit_lsn, end_lsn, _ts(ts))
        if kind == b"R":
            (oid,) = r.unpack("!I")
            schema, name = r.string(), r.string()
            ident, ncols = r.unpack("!bh")
            columns, key, types = [], [], []
            for _ in range(ncols):
                (flags,) = r.unpack("!b")
                col = r.string()
                typ, _typmod = r.unpack("!Ii")
                columns.append(col)
                types.append(typ)
                if flags & 1:
                    key.append(col)
            rel = Relation(oid, schema, name, chr(ident), columns, key, types)
            self.relations[oid] = rel
            return rel
        if kind == b"I":
            rel = self._relation(r)
            r.expect(b"N")
            return Change("INSERT", rel, new=r.tuple(rel.columns))
        if kind == b"U":
            rel = self._relation(r)
            marker = r.byte()
            old = None
            if marker in (b"K", b"O"):
                old = r.tuple(rel.columns)
                if marker == b"K":
                    old = {k: old[k] for k in rel.key}
                marker = r.byte()
            if marker != b"N":
                raise ValueError("pgoutput: malformed UPDATE")
            return Change("UPDATE", rel, new=r.tuple(rel.columns), old=old)
        if kind == b"D":
            rel = self._relation(r)
            marker = r.byte()
            old = r.tuple(rel.columns)
            if marker == b"K":
                old = {k: old[k] for k in rel.key}
            return Change("DELETE", rel, old=old)
        return None  # Origin, Type, Truncate, Message: nothing Realtime sends

    def _relation(self, r: _Reader) -> Relation:
        (oid,) = r.unpack("!I")
        rel = self.relations.get(oid)
        if rel is None:
            raise ValueError(f"pgoutput: change for unknown relation {oid}")
        return rel


def _ts(micros: int) -> datetime:
    return _PG_EPOCH + timedelta(microseconds=micros)


class _Reader:
    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def unpack(self, fmt: str) -> tuple[int, ...]:
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return values

    def byte(self) -> bytes:
        b = self.data[self.pos : self.pos + 1]
        self.pos += 1
        return b

    def expect(self, b: bytes) -> None:
        if self.byte() != b:
            raise ValueError("pgoutput: unexpected message layout")

    def string(self) -> str:
        end = self.data.index(b"\0", self.pos)
        s = self.data[self.pos : end].decode()
        self.pos = end + 1
        return s

    def tuple(self, columns: list[str]) -> dict[str, Value]:
        (n,) = self.unpack("!h")
        out: dict[str, Value] = {}
        for i in range(n):
            kind = self.byte()
            value: Value
            if kind == b"n":
                value = None
            elif kind == b"u":
                value = UNCHANGED
            elif kind in (b"t", b"b"):
                (size,) = self.unpack("!i")
                value = self.data[self.pos : self.pos + size].decode()
                self.pos += size
            else:
                raise ValueError(f"pgoutput: unknown tuple value kind {kind!r}")
            if i < len(columns):
                out[columns[i]] = value
        return out
