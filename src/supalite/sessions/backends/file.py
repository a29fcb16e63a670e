"""Sessions in one JSON file (`{"sessions": {id: …}, "credentials": {id: …}}`), for small
single-host deployments.  Every call takes an exclusive lock on `<file>.lock`, reads the file,
applies only its own fields and replaces the file atomically (write + rename), so processes
sharing the file never lose each other's writes and a crash never leaves half a file.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

from supalite.sessions import errors, models
from supalite.sessions.codec import credentials_from, session_from
from supalite.sessions.models import Session, SessionCredentials, to_millis
from supalite.sessions.store import SessionStore

T = TypeVar("T")
Data = dict[str, dict[str, dict[str, Any]]]


class FileStore(SessionStore):
    name = "file"

    def __init__(self, path: str | Path = "./sessions.json", **kw: Any) -> None:
        super().__init__(**kw)
        self.path = Path(path)
        self._lockfile = self.path.with_name(self.path.name + ".lock")

    # ------------------------------------------------------------------ plumbing

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            fd = os.open(self._lockfile, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise errors.unavailable("file", f"{self._lockfile}: {e}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _read(self) -> Data:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {"sessions": {}, "credentials": {}}
        except OSError as e:
            raise errors.unavailable("file", f"{self.path}: {e}") from e
        try:
            data = json.loads(text)
        except ValueError as e:
            raise errors.SessionStoreError(
                errors.CORRUPT_DATA, f"{self.path}: malformed JSON ({e})"
            ) from e
        if not isinstance(data, dict) or not all(
            isinstance(data.get(k), dict) for k in ("sessions", "credentials")
        ):
            raise errors.SessionStoreError(
                errors.CORRUPT_DATA, f"{self.path}: expected {{sessions: {{}}, credentials: {{}}}}"
            )
        return data

    def _write(self, data: Data) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(data, f)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise errors.unavailable("file", f"{self.path}: {e}") from e

    async def _run(self, fn: Callable[[Data], T], write: bool = False) -> T:
        def call() -> T:
            with self._locked():
                data = self._read()
                out = fn(data)
                if write:
                    self._write(data)
                return out

        return await asyncio.to_thread(call)

    def _visible(self, data: Data, user_id: str, session_id: str) -> dict[str, Any] | None:
        rec = data["sessions"].get(session_id)
        if not isinstance(rec, dict) or rec.get("user_id") != user_id:
            return None
        return rec if self._is_visible(rec) else None

    def _is_visible(self, rec: Mapping[str, Any]) -> bool:
        # From the lifecycle fields alone: deciding visibility must not decrypt anything.
        sid = str(rec.get("session_id"))
        try:
            expires, updated = (
                models.from_millis(rec.get(k)) for k in ("expires_at", "updated_at")
            )
        except (ValueError, TypeError, OverflowError) as e:
            raise errors.corrupt(sid, "expires_at/updated_at", str(e)) from e
        status = rec.get("status") or "pending"
        return models.is_visible(str(status), expires, updated, self.clock())

    def _open(self, session_id: str, column: str, stored: Any) -> Any:
        return self.open_field(session_id, column, stored)

    def _session(self, rec: Mapping[str, Any]) -> Session:
        try:
            return session_from(rec, self._open, models.from_millis)
        except KeyError as e:
            raise errors.corrupt(str(rec.get("session_id")), str(e), "missing") from e

    def _record(self, s: Session) -> dict[str, Any]:
        rec = asdict(s)
        for k in ("created_at", "updated_at", "expires_at"):
            rec[k] = to_millis(rec[k])
        rec["headers"] = self.cipher.seal(rec["headers"])
        return rec

    # ------------------------------------------------------------------ interface

    async def create(self, session: Session) -> Session:
        row = models.new_session(session, self.clock())
        record = self._record(row)

        def go(data: Data) -> None:
            old = data["sessions"].get(row.session_id)
            if old is not None and self._is_visible(old):
                raise errors.exists(row.session_id)
            data["credentials"].pop(row.session_id, None)
            data["sessions"][row.session_id] = record

        await self._run(go, write=True)
        return row

    async def update(self, user_id: str, session_id: str, changes: Mapping[str, Any]) -> None:
        models.check_keys(user_id, session_id)
        changes = models.check_update(changes)
        sealed = self.seal_fields(changes)

        def go(data: Data) -> None:
            rec = self._visible(data, user_id, session_id)
            if rec is None:
                raise errors.not_found(user_id, session_id)
            now = self.clock()
            rec.update(sealed)
            rec["updated_at"] = to_millis(now)
            rec["expires_at"] = to_millis(models.expires_for(rec["status"], now))

        await self._run(go, write=True)

    async def patch_credentials(
        self, user_id: str, session_id: str, changes: Mapping[str, Any]
    ) -> None:
        models.check_keys(user_id, session_id)
        sealed = self.seal_fields(models.check_credentials(changes))

        def go(data: Data) -> None:
            if self._visible(data, user_id, session_id) is None:
                raise errors.not_found(user_id, session_id)
            rec = data["credentials"].setdefault(
                session_id, {"session_id": session_id, "user_id": user_id}
            )
            rec.update(sealed)

        await self._run(go, write=True)

    async def get(self, user_id: str, session_id: str) -> Session | None:
        rec = await self._run(lambda d: self._visible(d, user_id, session_id))
        return self._session(rec) if rec else None

    async def get_credentials(self, user_id: str, session_id: str) -> SessionCredentials | None:
        def go(data: Data) -> tuple[bool, dict[str, Any] | None]:
            if self._visible(data, user_id, session_id) is None:
                return False, None
            return True, data["credentials"].get(session_id)

        found, rec = await self._run(go)
        if not found:
            return None
        full = None
        if rec is not None:
            full = {c: rec.get(c) for c in models.CREDENTIAL_FIELDS}
        return credentials_from(user_id, session_id, full, self._open)

    async def clear_credentials(self, user_id: str, session_id: str) -> None:
        def go(data: Data) -> None:
            rec = data["credentials"].get(session_id)
            if rec is not None and rec.get("user_id") == user_id:
                del data["credentials"][session_id]

        await self._run(go, write=True)

    async def list(self, user_id: str) -> list[Session]:
        def go(data: Data) -> builtins.list[dict[str, Any]]:
            return [
                r
                for sid in list(data["sessions"])
                if (r := self._visible(data, user_id, sid)) is not None
            ]

        recs = await self._run(go)
        return sorted(
            (self._session(r) for r in recs),
            key=lambda s: (s.created_at or models.utcnow(), s.session_id),
        )

    async def delete(self, user_id: str, session_id: str) -> None:
        def go(data: Data) -> None:
            rec = data["sessions"].get(session_id)
            if rec is not None and rec.get("user_id") == user_id:
                del data["sessions"][session_id]
                data["credentials"].pop(session_id, None)

        await self._run(go, write=True)

    async def list_ids(self, user_id: str) -> builtins.list[str]:
        return [s.session_id for s in await self.list(user_id)]

    async def list_all_ids(self) -> builtins.list[str]:
        def go(data: Data) -> builtins.list[str]:
            return [sid for sid, r in data["sessions"].items() if self._is_visible(r)]

        return await self._run(go)

    async def clear_all(self) -> None:
        def go(data: Data) -> None:
            data["sessions"].clear()
            data["credentials"].clear()

        await self._run(go, write=True)

    async def cleanup_expired(self) -> int:
        def go(data: Data) -> int:
            gone = [sid for sid, r in data["sessions"].items() if not self._is_visible(r)]
            for sid in gone:
                del data["sessions"][sid]
                data["credentials"].pop(sid, None)
            return len(gone)

        return await self._run(go, write=True)

    async def reencrypt(self) -> int:
        def go(data: Data) -> int:
            count = 0
            for table, cols in (
                ("sessions", ("headers",)),
                ("credentials", ("client_information", "tokens", "code_verifier")),
            ):
                for sid, rec in data[table].items():
                    for c in cols:
                        if not self.cipher.is_current(rec.get(c)):
                            rec[c] = self.cipher.seal(self.open_field(sid, c, rec.get(c)))
                            count += 1
            return count

        return await self._run(go, write=True)
