"""Per-IP request limits for Auth's abuse-prone endpoints, as GoTrue's (token buckets).

The limits come from config.toml `[auth.rate_limit]` (the Supabase CLI's names); each is a
number of requests per window for one client IP.  Buckets live in the process, as GoTrue
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
        capacity = self._limits.get(name, 0)
        if capacity <= 0:
            return  # 0: unlimited
        window = WINDOWS[name]
        now = self._clock()
        tokens, last = self._buckets.pop((name, key), (float(capacity), now))
        tokens = min(float(capacity), tokens + (now - last) * capacity / window)
        if tokens < 1.0:
            self._buckets[(name, key)] = (tokens, now)
            raise self._error(name)
        self._buckets[(name, key)] = (tokens - 1.0, now)
        while len(self._buckets) > _MAX_KEYS:
            self._buckets.popitem(last=False)

    @staticmethod
    def _error(name: str) -> AuthError:
        if name == "email_sent":
            return too_many(OVER_EMAIL_LIMIT, "email rate limit exceeded")
        return too_many(OVER_REQUEST_LIMIT, "Request rate limit reached")
