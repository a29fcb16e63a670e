"""Where Auth may send a browser: the site URL and the allow-list, nothing else.

As GoTrue's IsRedirectURLValid: same scheme, host and port as `site_url` (any port on
loopback), any loopback IP, or a match of `additional_redirect_urls`, whose globs treat `.`
and `/` as separators (`*` stays within one label or segment, `**` crosses them).  Anything
else falls back to `site_url`, so an attacker's URL in `redirect_to` is simply ignored.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from functools import lru_cache
from urllib.parse import urlencode, urlsplit, urlunsplit

_HOSTNAME = re.compile(r"^[a-zA-Z0-9_.-]+$")
_DECIMAL_IP = re.compile(r"^\d+$")


@lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append(r"[^./]*")
            i += 1
        elif pattern[i] == "?":
            out.append(r"[^./]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_allowed(url: str, site_url: str, allow_list: Sequence[str]) -> bool:
    if not url:
        return False
    try:
        base, ref = urlsplit(site_url), urlsplit(url)
        ref_port, base_port = ref.port, base.port
    except ValueError:
        return False
    host = ref.hostname or ""
    if (
        host == base.hostname
        and ref.scheme == base.scheme
        and (ref_port == base_port or _is_loopback(host))
    ):
        return True
    if _DECIMAL_IP.match(host):
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    if ref.scheme in ("http", "https") and not _HOSTNAME.match(host):
        return False
    target = url.split("#", 1)[0]
    return any(_glob(p).match(target) for p in allow_list)


def choose(requested: str | None, site_url: str, allow_list: Sequence[str]) -> str:
    """`requested` when allowed, else the site URL (GoTrue's GetReferrer)."""
    if requested and is_allowed(requested, site_url, allow_list):
        return requested
    return site_url


def with_fragment(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(fragment=urlencode(params)))


def with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = parts.query + ("&" if parts.query else "") + urlencode(params)
    return urlunsplit(parts._replace(query=query))
