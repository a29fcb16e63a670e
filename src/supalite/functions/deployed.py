"""The deployed functions as one process sees them: a snapshot of `_supalite.functions` (names,
versions, entrypoints — not the files) and of the decrypted secrets, kept fresh by
LISTEN/NOTIFY.

Why LISTEN/NOTIFY rather than a read per call: a call then costs no database round trip, and a
deploy reaches every process as its transaction commits (store.py notifies in it) — within
milliseconds, not a TTL later.  A reload is one small query, done on the next call after a
notification.  If the listening connection is lost, the snapshot is reloaded at most every
second until it is back (a notification sent meanwhile is not lost to us); while listening it
is still reloaded every 30 s as a safety net.

A version's files are written once to `<data dir>/functions/<slug>/v<version>-<sha>/<slug>/`
(atomically: a temporary folder renamed into place, so processes sharing the data folder never
see half a version) and the workers run those real files.  A new version is a new folder, so
the FunctionSpec differs and the pool retires the old workers (runtime.Pool.acquire).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from supalite.functions import errors, store
from supalite.functions.deploy import AdminError, clean_path, lang_of
from supalite.functions.registry import FunctionSpec
from supalite.functions.secrets import cipher
from supalite.sessions.errors import SessionStoreError

log = logging.getLogger("supalite.functions")

_TTL_LISTENING = 30.0
_TTL_POLLING = 1.0
_CONNECT_TIMEOUT = 10.0
_DB_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


@dataclass(frozen=True)
class Meta:
    slug: str
    version: int
    entrypoint: str
    verify_jwt: bool
    sha256: str

    @property
    def folder_name(self) -> str:
        return f"v{self.version}-{self.sha256[:16]}"


class DeployedFunctions:
    def __init__(self, admin_url: str, data_dir: Path, jwt_secret: str) -> None:
        self.admin_url = admin_url
        self.root = data_dir / "functions"
        self.cipher = cipher(jwt_secret)
        self.functions: dict[str, Meta] = {}
        self.env: dict[str, str] = {}  # the secrets, decrypted: for workers' environments
        self.env_rev = ""  # changes when the secrets change: workers get the new values
        self._conn: asyncpg.Connection | None = None
        self._listening = False
        self._lock = asyncio.Lock()  # one statement at a time on the connection
        self._loaded_at = float("-inf")
        self._loaded = False
        self._changes = 0  # notifications seen: a load that overlaps one is stale at once
        self._writing: dict[str, asyncio.Lock] = {}

    async def start(self) -> None:
        with contextlib.suppress(errors.FunctionsError):
            await self.current()

    async def stop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(*_DB_ERRORS):
                await conn.close()

    def invalidate(self) -> None:
        self._changes += 1
        self._loaded_at = float("-inf")

    def _notified(self, *_: Any) -> None:
        self.invalidate()

    def _lost(self, _conn: Any) -> None:
        self._listening = False

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is not None and not self._conn.is_closed():
            return self._conn
        self._listening = False
        conn = await asyncpg.connect(
            self.admin_url,
            timeout=_CONNECT_TIMEOUT,
            server_settings={"application_name": "supalite functions"},
        )
        try:
            await conn.add_listener(store.CHANNEL, self._notified)
            conn.add_termination_listener(self._lost)
            self._listening = True
        except _DB_ERRORS as e:  # e.g. behind a transaction pooler: poll instead
            log.warning("functions: cannot LISTEN for deploys (polling each second): %s", e)
        self._conn = conn
        return conn

    async def current(self) -> dict[str, Meta]:
        """The deployed functions, reloaded when a notification (or the TTL) says so."""
        loop = asyncio.get_running_loop()
        ttl = _TTL_LISTENING if self._listening else _TTL_POLLING
        if loop.time() - self._loaded_at <= ttl:
            return self.functions
        async with self._lock:
            if loop.time() - self._loaded_at > ttl:
                await self._load(loop.time())
        return self.functions

    async def _load(self, started: float) -> None:
        changes = self._changes
        try:
            conn = await self._connection()
            rows = await conn.fetch(
                "select slug, version, entrypoint, verify_jwt, sha256 from _supalite.functions"
            )
            sealed = await store.sealed_secrets(conn)
        except _DB_ERRORS as e:
            if self._conn is not None:
                with contextlib.suppress(*_DB_ERRORS):
                    await self._conn.close()
            self._conn, self._listening = None, False
            self._loaded_at = started  # retry after the polling TTL, not on every call
            if not self._loaded:
                log.warning("functions: cannot read the deployed functions: %s", e)
                raise errors.boot_error("Cannot read the deployed functions (database)") from e
            log.warning("functions: cannot refresh the deployed functions (kept): %s", e)
            return
        self.functions = {
            r["slug"]: Meta(r["slug"], r["version"], r["entrypoint"], r["verify_jwt"], r["sha256"])
            for r in rows
        }
        env: dict[str, str] = {}
        for name, value in sealed:
            try:
                env[name] = str(self.cipher.open(value, f"secret {name}"))
            except SessionStoreError as e:
                log.warning("functions: %s (set it again)", e)
        self.env = env
        self.env_rev = hashlib.sha256(repr(sealed).encode()).hexdigest()[:16]
        self._loaded = True
        if self._changes == changes:
            self._loaded_at = started

    async def spec(self, name: str) -> FunctionSpec | None:
        """The deployed function `name`, its files on disk; None when none is deployed."""
        for _ in range(2):
            meta = (await self.current()).get(name)
            if meta is None:
                return None
            entry = await self._materialize(meta)
            if entry is not None:
                return FunctionSpec(name, lang_of(meta.entrypoint), entry, meta.verify_jwt)
            self.invalidate()  # redeployed since the snapshot: look again
        return None

    async def _materialize(self, meta: Meta) -> Path | None:
        folder = self.root / meta.slug / meta.folder_name
        entry = folder / meta.slug / meta.entrypoint
        if folder.is_dir():  # complete: it only ever appears by a rename
            return entry
        lock = self._writing.setdefault(meta.slug, asyncio.Lock())
        async with lock:
            if folder.is_dir():
                return entry
            async with self._lock:
                try:
                    files = await store.get_files(await self._connection(), meta.slug, meta.sha256)
                except _DB_ERRORS as e:
                    raise errors.boot_error("Cannot read the function's files (database)") from e
            if files is None:
                return None
            try:
                await asyncio.to_thread(_write_version, folder, meta, files)
            except (OSError, AdminError) as e:
                log.error("functions/%s: cannot write version %s: %s", meta.slug, meta.version, e)
                raise errors.boot_error() from e
        return entry


def _write_version(folder: Path, meta: Meta, files: dict[str, str]) -> None:
    tmp = folder.parent / f".tmp-{uuid.uuid4().hex}"
    try:
        base = tmp / meta.slug
        for path, content in files.items():
            # Checked again: the rows are only written by the admin API, but a file must never
            # land outside the version's folder whatever the table holds.
            target = base / clean_path(meta.slug, path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8", errors="surrogateescape")
        try:
            os.rename(tmp, folder)
        except OSError:
            if not folder.is_dir():  # not another process's copy of the same version
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _prune(folder.parent, meta.version)


def _prune(slug_dir: Path, version: int) -> None:
    """Older versions go; the previous one stays for calls still running on it elsewhere."""
    for old in slug_dir.iterdir():
        head = old.name.partition("-")[0]
        if head.startswith("v") and head[1:].isdigit() and int(head[1:]) < version - 1:
            shutil.rmtree(old, ignore_errors=True)
