"""Per-IP request limits for Auth's abuse-prone endpoints, as GoTrue's (token buckets), and
per-address limits on failed password sign-ins.

The limits come from config.toml `[auth.rate_limit]` (the Supabase CLI's names); each is a
number of requests per window for one client IP.  Password guessing spread over many IPs is
limited per address too: each failed sign-in for an address takes a token from that address's
`sign_in_sign_ups` bucket, and an address with none left is refused before its password is
checked (successful sign-ins take nothing, so the owner is locked out only while guesses
keep failing).  Buckets live in the process, as GoTrue
keeps them per instance: with N supalite processes a client gets at most N times the limit.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from supalite.auth.errors import AuthError, too_many

# limit name → window in seconds, as GoTrue applies them.
WINDOWS: dict[str, float] = {
    "sign_in_sign_ups": 300.0,
    "token_refresh": 300.0,
    "token_verifications": 300.0,
    "anonymous_users": 3600.0,
    "email_sent": 3600.0,
    "sms_sent": 3600.0,
    "web3": 300.0,
}
_MAX_KEYS = 100_000  # bounded memory under a flood of distinct addresses

OVER_REQUEST_LIMIT = "over_request_rate_limit"
OVER_EMAIL_LIMIT = "over_email_send_rate_limit"


class RateLimiter:
    def __init__(
        self, limits: Mapping[str, int], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limits = dict(limits)
        self._clock = clock
        self._buckets: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()

    def hit(self, name: str, key: str) -> None:
        """Take one token for `key` under limit `name`, or raise the 429 GoTrue answers."""
        self.check(name, key)
        self.charge(name, key)

    def check(self, name: str, key: str) -> None:
        """Raise the 429 if `key` has no token left under `name`; take none."""
        if self._level(name, key) < 1.0:
            raise self._error(name)

    def charge(self, name: str, key: str) -> None:
        """Take one token for `key` if it has one left (a failure recorded); never raises."""
        capacity = self._limits.get(name, 0)
        if capacity <= 0:
            return
        level = self._level(name, key)
        self._buckets.pop((name, key), None)
        self._buckets[(name, key)] = (max(0.0, level - 1.0), self._clock())
        while len(self._buckets) > _MAX_KEYS:
            self._buckets.popitem(last=False)

    def _level(self, name: str, key: str) -> float:
        """Tokens `key` has now under `name` (infinite when the limit is 0: unlimited)."""
        capacity = self._limits.get(name, 0)
        if capacity <= 0:
            return float("inf")
        now = self._clock()
        tokens, last = self._buckets.get((name, key), (float(capacity), now))
        return min(float(capacity), tokens + (now - last) * capacity / WINDOWS[name])

    @staticmethod
    def _error(name: str) -> AuthError:
        if name == "email_sent":
            return too_many(OVER_EMAIL_LIMIT, "email rate limit exceeded")
        return too_many(OVER_REQUEST_LIMIT, "Request rate limit reached")
