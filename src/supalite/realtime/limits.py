"""Rate limits as Supabase Realtime counts them.

`RateCounter` is Supabase's `Realtime.RateCounter` for one tenant: events are counted in
5-second ticks, the last 12 ticks (a minute) are kept, and the rate is their average per
second.  It is only recomputed at a tick, so a burst is judged once its tick ends, and a limit
lifts once the average over the kept ticks falls back.  A counter with nothing counted for
5 minutes starts afresh (Supabase stops idle counters).  supalite is one tenant; each process
keeps its own counters.

`ClientWindow` is the per-channel presence limit (`presence_handler.ex`): at most `calls`
presence messages in a window that the first of them opens.

`UsersCounter` is Supabase's `Realtime.UsersCounter` (a `Forum.Census` scope): the sockets with
a joined channel, counted exactly on their own process, plus the counts the other processes
last announced (Census broadcasts each node's counts to its peers every few seconds).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable

TICK = 5.0  # seconds per sample, as Supabase's rate counters
SAMPLES = 12  # samples kept: the average covers the last minute
IDLE = 300.0  # seconds without an event before a counter starts afresh


class RateCounter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._samples: deque[int] = deque(maxlen=SAMPLES)
        self._count = 0
        self._next: float | None = None  # when the current tick ends
        self._last = 0.0  # when the last event was counted
        self._avg = 0.0

    def _advance(self) -> float:
        now = self._clock()
        if self._next is None or now - self._last >= IDLE:
            self._samples.clear()
            self._count, self._avg, self._next = 0, 0.0, now + TICK
        elif now >= self._next:
            ticks = int((now - self._next) // TICK) + 1
            self._samples.appendleft(self._count)
            self._samples.extendleft([0] * min(ticks - 1, SAMPLES))
            self._count = 0
            self._next += ticks * TICK
            self._avg = sum(self._samples) / len(self._samples) / TICK
        return now

    def add(self, n: int = 1) -> None:
        self._last = self._advance()
        self._count += n

    @property
    def avg(self) -> float:
        """Events per second over the kept ticks, as of the last tick."""
        self._advance()
        return self._avg


class ClientWindow:
    def __init__(self, calls: int, seconds: float) -> None:
        self.calls = calls
        self.seconds = seconds
        self._count = 0
        self._reset_at: float | None = None

    def allow(self) -> bool:
        """Count one call; False when the window already holds `calls` of them."""
        now = time.monotonic()
        if self._reset_at is None or now > self._reset_at:
            self._reset_at, self._count = now + self.seconds, 1
            return True
        if self._count >= self.calls:
            return False
        self._count += 1
        return True


class UsersCounter:
    def __init__(self, stale_after: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._stale_after = stale_after  # a peer silent this long is gone (or dead)
        self._local: set[Hashable] = set()
        self._peers: dict[str, tuple[int, float]] = {}  # node → (count, when announced)

    def add(self, socket: Hashable) -> None:
        self._local.add(socket)

    def remove(self, socket: Hashable) -> None:
        self._local.discard(socket)

    def counted(self, socket: Hashable) -> bool:
        return socket in self._local

    @property
    def local(self) -> int:
        return len(self._local)

    def peer(self, node: str, count: int) -> None:
        """What another process announced it holds (0 when it stops)."""
        if count > 0:
            self._peers[node] = (count, self._clock())
        else:
            self._peers.pop(node, None)

    def total(self) -> int:
        """Sockets counted on every live process."""
        now = self._clock()
        for node, (_, seen) in list(self._peers.items()):
            if now - seen > self._stale_after:
                del self._peers[node]
        return len(self._local) + sum(count for count, _ in self._peers.values())
