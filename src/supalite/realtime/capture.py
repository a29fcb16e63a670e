"""Capture: row changes of tables in the `supabase_realtime` publication, read from a logical
replication slot (pgoutput) and stored, in commit order, in `_supalite.realtime_changes`.

One process at a time holds the capture (a session advisory lock on the connection that reads
the slot), so every change is captured once however many processes share the database; when
that process dies its lock goes with its connection and another one takes over from the slot's
position.  The slot is only advanced after a batch is stored, and the last stored commit is
recorded in the same transaction as the batch, so a takeover neither loses nor repeats a
transaction.  Why logical decoding rather than triggers: see docs/realtime.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC
from typing import Any

import asyncpg

from supalite.realtime import sql
from supalite.realtime.pgoutput import UNCHANGED, Begin, Change, Commit, Decoder

log = logging.getLogger("supalite.realtime")

LOCK_KEY = 0x5355_5052  # "SUPR": the capture lock shared by every supalite process
SLOT = "supalite_realtime"
_JSON_TYPES = {114, 3802}  # json, jsonb: their text is parsed so the row keeps objects
_BATCH = 2000
_IDLE_POLL = 0.02  # seconds between slot reads when nothing is happening
# Seconds between moves of the slot past WAL that published nothing: a move is a decoding
# session from the slot's restart point, as costly as a read.
_ADVANCE_EVERY = 1.0


def lsn_text(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def lsn_int(text: str) -> int:
    hi, _, lo = text.partition("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def change_body(change: Change, commit_time: str) -> dict[str, Any]:
    rel = change.relation
    json_cols = {c for c, t in zip(rel.columns, rel.types, strict=False) if t in _JSON_TYPES}

    def values(row: dict[str, Any] | None) -> dict[str, Any] | None:
        if row is None:
            return None
        out: dict[str, Any] = {}
        for col, value in row.items():
            if value is UNCHANGED:
                continue  # not in the WAL; filled from the old row below when it has it
            if col in json_cols and isinstance(value, str):
                with contextlib.suppress(ValueError):
                    value = json.loads(value)
            out[col] = value
        return out

    new, old = values(change.new), values(change.old)
    if new is not None and old is not None:
        for col, value in old.items():
            new.setdefault(col, value)
    return {
        "schema": rel.schema, "table": rel.name, "type": change.kind, "ts": commit_time,
        "new": new, "old": old, "key": rel.key, "full": rel.replica_identity == "f",
    }  # fmt: skip


def commit_timestamp(commit: Commit) -> str:
    t = commit.commit_time.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


class Capture:
    def __init__(
        self,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        on_stored: Callable[[], None] = lambda: None,
    ) -> None:
        self._connect = connect
        self._on_stored = on_stored  # this process's feed reads at once, without the NOTIFY hop
        self.error: str | None = None  # why Postgres changes cannot be captured, if so
        self.leader = False

    async def prepare(self) -> None:
        """Create the slot before serving, so no change committed after startup is missed
        (a slot only sees what commits after it exists)."""
        conn = await self._connect()
        try:
            level = await conn.fetchval(sql.WAL_LEVEL)
            if level != "logical":
                self.error = f"Postgres changes need wal_level=logical (the server has {level})"
                log.warning("realtime: %s", self.error)
                return
            if await conn.fetchval(sql.SLOT_EXISTS, SLOT) is None:
                with contextlib.suppress(asyncpg.DuplicateObjectError):  # made by another
                    await conn.execute(sql.SLOT_CREATE, SLOT)
        except asyncpg.PostgresError as e:  # e.g. no REPLICATION privilege on a managed server
            self.error = f"Postgres changes are unavailable: {e}"
            log.warning("realtime: %s", self.error)
        finally:
            await conn.close()

    async def run(self) -> None:
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await self._connect()
                await self._lead(conn)
            except asyncio.CancelledError:
                raise
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
                log.warning("realtime: change capture interrupted (%s)", e)
            except Exception:  # keep capturing whatever one batch did
                log.exception("realtime: change capture failed")
            finally:
                self.leader = False
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(conn.close())
            await asyncio.sleep(1)

    async def _lead(self, conn: asyncpg.Connection) -> None:
        while not await conn.fetchval("select pg_try_advisory_lock($1)", LOCK_KEY):
            await asyncio.sleep(1)
        level = await conn.fetchval(sql.WAL_LEVEL)
        if level != "logical":
            self.error = f"Postgres changes need wal_level=logical (the server has {level})"
            log.warning("realtime: %s", self.error)
            await asyncio.sleep(60)
            return
        if await conn.fetchval(sql.SLOT_EXISTS, SLOT) is None:
            await conn.execute(sql.SLOT_CREATE, SLOT)
        self.error = None
        self.leader = True
        stored_text = await conn.fetchval(sql.CAPTURED_LSN, SLOT)
        stored = lsn_int(stored_text) if stored_text else 0
        pruned = 0.0
        loop = asyncio.get_running_loop()
        # How far the WAL is known to hold nothing to capture: as far as it was flushed when
        # a read of the slot that found nothing began (a read decodes at least that far), or
        # when the publication had no table.  While nothing is written past it, there is
        # nothing to decode, and asking costs a round trip instead of a decoding session
        # (which kept an idle server's Postgres 9% busy).
        covered = ""
        slot_at, moved = 0, 0.0  # where this loop last moved the slot to, and when
        while True:
            position, flushed, publishing = await conn.fetchrow(sql.WAL_POSITION)
            rows = []
            if not publishing:
                # No table to read changes of (one published, written and unpublished again
                # between two polls is missed).
                covered = flushed
            elif position != covered:
                rows = await conn.fetch(sql.SLOT_PEEK, SLOT, _BATCH)
                covered = covered if rows else flushed
            if not rows:
                if lsn_int(covered) > slot_at and loop.time() - moved > _ADVANCE_EVERY:
                    # Move the slot past WAL that published nothing, or it keeps the WAL of
                    # writes to unpublished tables on disk for ever, and every read decodes
                    # all of it again (40% of a core under a write load).
                    await conn.execute(sql.SLOT_ADVANCE, SLOT, covered)
                    slot_at, moved = lsn_int(covered), loop.time()
                if loop.time() - pruned > 60:
                    await conn.execute(sql.CHANGES_PRUNE)
                    await conn.execute(sql.BUS_PRUNE)
                    pruned = loop.time()
                await asyncio.sleep(_IDLE_POLL)
                continue
            bodies, last_commit, end = self._decode(rows, stored)
            if bodies or last_commit > stored:
                async with conn.transaction():
                    if bodies:
                        await conn.execute(sql.CHANGES_STORE, [json.dumps(b) for b in bodies])
                        await conn.execute(sql.CHANGES_NOTIFY)
                    await conn.execute(sql.CAPTURED_SET, SLOT, lsn_text(last_commit))
                stored = max(stored, last_commit)
                if bodies:
                    self._on_stored()
            if end > slot_at:
                await conn.execute(sql.SLOT_ADVANCE, SLOT, lsn_text(end))
                slot_at = end

    @staticmethod
    def _decode(rows: list[asyncpg.Record], stored: int) -> tuple[list[dict[str, Any]], int, int]:
        """Changes of transactions committed after `stored`, the last commit, its end."""
        decoder = Decoder()
        bodies: list[dict[str, Any]] = []
        pending: list[Change] = []
        last_commit = stored
        end = 0
        for row in rows:
            msg = decoder.decode(bytes(row["data"]))
            if isinstance(msg, Begin):
                pending = []
            elif isinstance(msg, Change):
                pending.append(msg)
            elif isinstance(msg, Commit):
                end = max(end, msg.end_lsn)
                if msg.commit_lsn > stored:
                    ts = commit_timestamp(msg)
                    bodies.extend(change_body(c, ts) for c in pending)
                    last_commit = max(last_commit, msg.commit_lsn)
                pending = []
        return bodies, last_commit, end
