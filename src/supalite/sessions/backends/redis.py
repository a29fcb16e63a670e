"""Sessions in Redis (redis-py's asyncio client): one hash per session and one per credentials,
each field a JSON value, plus a set of each user's session ids.

Keys follow mcp-ts 2.x's names under a prefix of their own (`supalite:mcp:session:{user}:{sid}`,
`…:credentials:{user}:{sid}`, `…:userId:{user}:sessions`): mcp-ts keeps a session as one JSON
string, here it is a hash so that a write can set single fields, and the two layouts must not
meet on the same key.  Writes are Lua scripts, so "exists, then set these fields, then the
expiry" is one atomic step: fields another process wrote meanwhile are kept.  Redis expires
keys natively (pending at `expires_at`, active 30 days after the last write); reads also apply
the store's clock, so a session is invisible the moment it expires.  Session ids are unique per
user here (as in mcp-ts's Redis backend), not across users as in the SQL backends.
"""

from __future__ import annotations

import builtins
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import asdict
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as rexc

from supalite.sessions import errors, models
from supalite.sessions.codec import credentials_from, session_from
from supalite.sessions.models import Session, SessionCredentials, to_millis
from supalite.sessions.store import SessionStore

# Shared by the scripts: is the session hash at `key` visible at `now` (epoch ms)?
_VISIBLE_LUA = """
local function visible(key, now)
  local st = redis.call('HGET', key, 'status')
  if not st then return false end
  st = cjson.decode(st)
  if st == 'active' then
    local u = redis.call('HGET', key, 'updated_at')
    if not u then return true end
    u = cjson.decode(u)
    return u == cjson.null or u >= now - 2592000000
  end
  local e = redis.call('HGET', key, 'expires_at')
  if not e then return true end
  e = cjson.decode(e)
  return e == cjson.null or e >= now
end
local function expire(key, at)
  if at then redis.call('PEXPIREAT', key, at) else redis.call('PERSIST', key) end
end
"""
# KEYS: session, credentials, index.  ARGV: now, sid, then field/value pairs.
_CREATE = (
    _VISIBLE_LUA
    + """
local now = tonumber(ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 1 and visible(KEYS[1], now) then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
local st = cjson.decode(redis.call('HGET', KEYS[1], 'status'))
local upd = cjson.decode(redis.call('HGET', KEYS[1], 'updated_at'))
if st == 'active' then expire(KEYS[1], upd + 2592000000)
else expire(KEYS[1], cjson.decode(redis.call('HGET', KEYS[1], 'expires_at'))) end
redis.call('SADD', KEYS[3], ARGV[2])
return 1
"""
)
# KEYS: session, credentials.  ARGV: now, then field/value pairs.
_UPDATE = (
    _VISIBLE_LUA
    + """
local now = tonumber(ARGV[1])
if not visible(KEYS[1], now) then return 0 end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[1], 'updated_at', now)
local at
if cjson.decode(redis.call('HGET', KEYS[1], 'status')) == 'active' then
  redis.call('HSET', KEYS[1], 'expires_at', 'null')
  at = now + 2592000000
else
  at = now + 600000
  redis.call('HSET', KEYS[1], 'expires_at', at)
end
expire(KEYS[1], at)
if redis.call('EXISTS', KEYS[2]) == 1 then expire(KEYS[2], at) end
return 1
"""
)
# KEYS: session, credentials.  ARGV: now, then field/value pairs.
_PATCH = (
    _VISIBLE_LUA
    + """
if not visible(KEYS[1], tonumber(ARGV[1])) then return 0 end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) else redis.call('PERSIST', KEYS[2]) end
return 1
"""
)


def _text(v: bytes | str) -> str:
    return v.decode(errors="replace") if isinstance(v, bytes) else v


class RedisStore(SessionStore):
    name = "redis"

    def __init__(self, url: str, *, prefix: str = "supalite:mcp", **kw: Any) -> None:
        super().__init__(**kw)
        self.url = url
        self.prefix = prefix
        self._redis: aioredis.Redis = aioredis.Redis.from_url(
            url, socket_connect_timeout=5, socket_timeout=10
        )
        self._create = self._redis.register_script(_CREATE)
        self._update = self._redis.register_script(_UPDATE)
        self._patch = self._redis.register_script(_PATCH)

    # ------------------------------------------------------------------ plumbing

    def _keys(self, user_id: str, session_id: str) -> tuple[str, str, str]:
        p = self.prefix
        return (
            f"{p}:session:{user_id}:{session_id}",
            f"{p}:credentials:{user_id}:{session_id}",
            f"{p}:userId:{user_id}:sessions",
        )

    @contextlib.asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        try:
            yield
        except errors.SessionStoreError:
            raise
        except (rexc.ConnectionError, rexc.TimeoutError, OSError) as e:
            raise errors.unavailable("redis", e) from e
        except rexc.RedisError as e:
            raise errors.SessionStoreError(errors.BACKEND, f"redis: {e}") from e

    @staticmethod
    def _pairs(values: Mapping[str, Any]) -> list[str]:
        out: list[str] = []
        for k, v in values.items():
            out += [k, json.dumps(v)]
        return out

    def _decode(self, raw: Mapping[Any, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        sid = _text(raw.get(b"session_id", b"?"))
        for k, v in raw.items():
            name = _text(k)
            try:
                out[name] = json.loads(v)
            except ValueError as e:
                raise errors.corrupt(sid, name, f"malformed JSON ({e})") from e
        return out

    def _session(self, raw: Mapping[Any, Any]) -> Session:
        rec = self._decode(raw)
        try:
            return session_from(rec, self._open, models.from_millis)
        except KeyError as e:
            raise errors.corrupt(str(rec.get("session_id")), str(e), "missing") from e

    def _open(self, session_id: str, column: str, stored: Any) -> Any:
        return self.open_field(session_id, column, stored)

    def _now(self) -> int:
        return to_millis(self.clock()) or 0

    def _visible(self, s: Session) -> bool:
        return models.is_visible(s.status, s.expires_at, s.updated_at, self.clock())

    # ------------------------------------------------------------------ interface

    async def init(self) -> None:
        async with self._guard():
            await self._redis.ping()

    async def create(self, session: Session) -> Session:
        now = self.clock()
        row = models.new_session(session, now)
        rec = asdict(row)
        for k in ("created_at", "updated_at", "expires_at"):
            rec[k] = to_millis(rec[k])
        rec["headers"] = self.cipher.seal(rec["headers"])
        async with self._guard():
            ok = await self._create(
                keys=list(self._keys(row.user_id, row.session_id)),
                args=[self._now(), row.session_id, *self._pairs(rec)],
            )
        if not ok:
            raise errors.exists(row.session_id)
        return row

    async def update(self, user_id: str, session_id: str, changes: Mapping[str, Any]) -> None:
        models.check_keys(user_id, session_id)
        sealed = self.seal_fields(models.check_update(changes))
        s, c, _ = self._keys(user_id, session_id)
        async with self._guard():
            ok = await self._update(keys=[s, c], args=[self._now(), *self._pairs(sealed)])
        if not ok:
            raise errors.not_found(user_id, session_id)

    async def patch_credentials(
        self, user_id: str, session_id: str, changes: Mapping[str, Any]
    ) -> None:
        models.check_keys(user_id, session_id)
        sealed = self.seal_fields(models.check_credentials(changes))
        s, c, _ = self._keys(user_id, session_id)
        async with self._guard():
            ok = await self._patch(keys=[s, c], args=[self._now(), *self._pairs(sealed)])
        if not ok:
            raise errors.not_found(user_id, session_id)

    async def get(self, user_id: str, session_id: str) -> Session | None:
        async with self._guard():
            raw = await self._redis.hgetall(self._keys(user_id, session_id)[0])
        if not raw:
            return None
        s = self._session(raw)
        return s if self._visible(s) else None

    async def get_credentials(self, user_id: str, session_id: str) -> SessionCredentials | None:
        if await self.get(user_id, session_id) is None:
            return None
        async with self._guard():
            raw = await self._redis.hgetall(self._keys(user_id, session_id)[1])
        rec = self._decode(raw) if raw else None
        full = {k: rec.get(k) for k in models.CREDENTIAL_FIELDS} if rec else None
        return credentials_from(user_id, session_id, full, self._open)

    async def clear_credentials(self, user_id: str, session_id: str) -> None:
        async with self._guard():
            await self._redis.delete(self._keys(user_id, session_id)[1])

    async def list(self, user_id: str) -> list[Session]:
        index = self._keys(user_id, "")[2]
        async with self._guard():
            ids = sorted(_text(m) for m in await self._redis.smembers(index))
            pipe = self._redis.pipeline(transaction=False)
            for sid in ids:
                pipe.hgetall(self._keys(user_id, sid)[0])
            raws = await pipe.execute() if ids else []
            stale = [sid for sid, raw in zip(ids, raws, strict=True) if not raw]
            if stale:  # keys Redis expired: prune them from the index
                await self._redis.srem(index, *stale)
        found = [self._session(raw) for raw in raws if raw]
        visible = [s for s in found if self._visible(s)]
        return sorted(visible, key=lambda s: (s.created_at or self.clock(), s.session_id))

    async def delete(self, user_id: str, session_id: str) -> None:
        s, c, index = self._keys(user_id, session_id)
        async with self._guard():
            pipe = self._redis.pipeline(transaction=True)
            pipe.delete(s, c)
            pipe.srem(index, session_id)
            await pipe.execute()

    async def list_ids(self, user_id: str) -> builtins.list[str]:
        return [s.session_id for s in await self.list(user_id)]

    async def _scan(self, kind: str) -> builtins.list[bytes]:
        return [k async for k in self._redis.scan_iter(match=f"{self.prefix}:{kind}:*", count=500)]

    async def _all_sessions(self) -> builtins.list[tuple[bytes, Session | None]]:
        async with self._guard():
            keys = await self._scan("session")
            pipe = self._redis.pipeline(transaction=False)
            for k in keys:
                pipe.hgetall(k)
            raws = await pipe.execute() if keys else []
        return [(k, self._session(raw) if raw else None) for k, raw in zip(keys, raws, strict=True)]

    async def list_all_ids(self) -> builtins.list[str]:
        return sorted(
            s.session_id
            for _, s in await self._all_sessions()
            if s is not None and self._visible(s)
        )

    async def clear_all(self) -> None:
        async with self._guard():
            keys = [
                k for kind in ("session", "credentials", "userId") for k in await self._scan(kind)
            ]
            if keys:
                await self._redis.delete(*keys)

    async def cleanup_expired(self) -> int:
        count = 0
        for _, s in await self._all_sessions():
            if s is not None and not self._visible(s):
                await self.delete(s.user_id, s.session_id)
                count += 1
        async with self._guard():  # index entries whose key Redis already expired
            for index in await self._scan("userId"):
                user = _text(index)[len(self.prefix) + len(":userId:") : -len(":sessions")]
                for sid in await self._redis.smembers(index):
                    if not await self._redis.exists(self._keys(user, _text(sid))[0]):
                        await self._redis.srem(index, sid)
        return count

    async def reencrypt(self) -> int:
        count = 0
        async with self._guard():
            for kind, cols in (
                ("session", ("headers",)),
                ("credentials", ("client_information", "tokens", "code_verifier")),
            ):
                for key in await self._scan(kind):
                    raw = await self._redis.hgetall(key)
                    rec = self._decode(raw)
                    sid = str(rec.get("session_id", _text(key)))
                    stale = {
                        c: json.dumps(self.cipher.seal(self.open_field(sid, c, rec.get(c))))
                        for c in cols
                        if c in rec and not self.cipher.is_current(rec[c])
                    }
                    if stale:
                        await self._redis.hset(key, mapping=stale)  # type: ignore[arg-type]
                        count += len(stale)
        return count

    async def close(self) -> None:
        await self._redis.aclose()
