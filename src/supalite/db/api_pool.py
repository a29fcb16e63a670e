"""The pool of the API roles' connections (`authenticator`, switching role per request).

Not asyncpg's pool, for two reasons measured on the Data API:
- A connection is reset when a request starts (`request.request_transaction`), so going back
  to the pool needs no reset, no query, no bookkeeping beyond a list: asyncpg's acquire and
  release cost about 30 µs of Python per request, this about 3.
- A read may skip setting its settings when its connection's previous read left the same
  ones (`request.request_statement`), so acquire prefers an idle connection whose session
  already has the settings asked for.  (Under a saturated pool a released connection goes
  to the first waiter, whatever it wants: handing it to one that wants its settings, out of
  turn, saved little in a closed loop of eight users and cost fairness.)

Idle connections are taken last in, first out (a small hot set; the rest idle out after
`idle_timeout`).  A connection comes back broken or busy when its request ended by
cancellation or a lost connection, or still inside a transaction: it is closed, and its
place goes to whoever waits.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import NamedTuple

import asyncpg

# How many of a request's settings (`request.RequestContext.values`) name its caller: the
# search path, the role and the claims.  The rest (method, path, headers) are the request's own.
CALLER_SETTINGS = 3


class SessionSettings(NamedTuple):
    """The settings a request left on its connection's session: their values, whether the
    session is read-only, and for a read, Postgres's digest of them (`enter()`)."""

    values: tuple[str, ...]
    read_only: bool
    digest: str | None = None

    def serves(self, values: tuple[str, ...], read_only: bool) -> bool:
        """Whether a one-statement request with these settings may skip setting them: a read
        needs all of them, as the digest its statement reports covers them all; an insert
        needs its caller's, as the statement checks them and sets the rest itself
        (`request.RequestContext.checked_body`)."""
        if read_only:
            return self.read_only and self.digest is not None and self.values == values
        n = CALLER_SETTINGS
        return not self.read_only and self.values[:n] == values[:n]


# What a request asks of a connection's session: its settings, and whether it reads.
Wanted = tuple[tuple[str, ...], bool]


class ApiConnection(asyncpg.Connection):  # type: ignore[misc]
    """A connection of the API pool.  It remembers the settings its last request left on the
    session (`SessionSettings`), so a request that repeats them can skip setting them again."""

    _session: SessionSettings | None = None

    def session_settings(self) -> SessionSettings | None:
        return self._session

    def remember_session(self, settings: SessionSettings | None) -> None:
        self._session = settings


# What a request may end with that leaves its connection unfit for the next one: cancellation,
# timeouts and lost connections can leave a statement running or half-read.  (An error of
# Postgres, or of the request after its statement completed, leaves it fit.)
_BROKEN = (asyncio.CancelledError, TimeoutError, asyncpg.InterfaceError, OSError)


class ApiPool:
    """Connections of the API roles, usable only through `request.request_transaction` and
    `request.request_statement`: a connection may still carry its previous request's role and
    settings until the next request's first statement clears them."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[ApiConnection]],
        *,
        max_size: int,
        idle_timeout: float,
    ) -> None:
        self._connect = connect
        self._max = max_size
        self._idle_timeout = idle_timeout
        self._idle: list[ApiConnection] = []  # most recently used last
        self._timers: dict[ApiConnection, asyncio.TimerHandle] = {}
        self._size = 0  # connections open, being opened, or promised to a waiter
        # Waiters get a connection, or None: a place to open one in.
        self._waiters: deque[asyncio.Future[ApiConnection | None]] = deque()
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False

    @classmethod
    async def open(
        cls,
        connect: Callable[[], Awaitable[ApiConnection]],
        *,
        min_size: int = 1,
        max_size: int,
        idle_timeout: float,
    ) -> ApiPool:
        pool = cls(connect, max_size=max_size, idle_timeout=idle_timeout)
        for _ in range(min(min_size, max_size)):
            pool._size += 1
            pool._keep(await pool._open())
        return pool

    def _acquire(self, session: Wanted | None = None) -> _Lease:
        """A connection, preferably one whose session serves `session`: a request's
        settings and whether it reads (`SessionSettings.serves`)."""
        return _Lease(self, session)

    async def _get(self, session: Wanted | None) -> ApiConnection:
        if self._closed:
            raise asyncpg.InterfaceError("the API pool is closed")
        if self._idle:
            return self._take(session)
        if self._size < self._max:
            self._size += 1
            return await self._open()
        waiter: asyncio.Future[ApiConnection | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            conn = await waiter
        except asyncio.CancelledError:
            # Handed a connection (or a place) just as this request was cancelled: pass it on.
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                given = waiter.result()
                if given is None:
                    self._free_place()
                else:
                    self._keep(given)
            raise
        return conn if conn is not None else await self._open()

    def _take(self, session: Wanted | None) -> ApiConnection:
        at = len(self._idle) - 1
        if session is not None:
            for i in range(at, -1, -1):
                last = self._idle[i].session_settings()
                if last is not None and last.serves(*session):
                    at = i
                    break
        conn = self._idle.pop(at)
        self._timers.pop(conn).cancel()
        return conn

    async def _open(self) -> ApiConnection:
        """A new connection in a place already counted in `_size`."""
        try:
            return await self._connect()
        except BaseException:
            self._free_place()
            raise

    def _release(self, conn: ApiConnection, error: BaseException | None) -> None:
        broken = isinstance(error, _BROKEN) or conn.is_in_transaction()
        if self._closed or broken or conn.is_closed():
            self._discard(conn)
        else:
            self._keep(conn)

    def _keep(self, conn: ApiConnection) -> None:
        """Hand `conn` to the first waiter, or put it with the idle ones."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():  # else cancelled while waiting
                waiter.set_result(conn)
                return
        self._idle.append(conn)
        loop = asyncio.get_running_loop()
        self._timers[conn] = loop.call_later(self._idle_timeout, self._expire, conn)

    def _free_place(self) -> None:
        """A connection is gone: its place goes to the first waiter, or back to the pool."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._size -= 1

    def _expire(self, conn: ApiConnection) -> None:
        if conn in self._timers:
            self._idle.remove(conn)
            del self._timers[conn]
            self._discard(conn)

    def _discard(self, conn: ApiConnection) -> None:
        """Close `conn` in the background: asyncpg first waits for a cancelled statement's
        cancel request to reach the server (terminating at once would drop it, and leave the
        statement running), then ends the session, which rolls back any transaction."""
        self._free_place()
        if conn.is_closed():
            return
        task = asyncio.get_running_loop().create_task(self._close(conn))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @staticmethod
    async def _close(conn: ApiConnection) -> None:
        try:
            await conn.close(timeout=5)
        except Exception:
            conn.terminate()

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            self._timers.pop(conn).cancel()
            self._discard(conn)
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(asyncpg.InterfaceError("the API pool is closed"))
        self._waiters.clear()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


class _Lease:
    """`async with pool._acquire() as conn`: the connection goes back (or is closed) on exit."""

    __slots__ = ("_conn", "_pool", "_session")

    def __init__(self, pool: ApiPool, session: Wanted | None) -> None:
        self._pool = pool
        self._session = session
        self._conn: ApiConnection | None = None

    async def __aenter__(self) -> ApiConnection:
        self._conn = await self._pool._get(self._session)
        return self._conn

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool._release(conn, exc)
