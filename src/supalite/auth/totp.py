"""TOTP (RFC 6238: HMAC-SHA1, 6 digits, 30-second steps), as authenticator apps speak it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
from urllib.parse import quote, urlencode

import segno

PERIOD = 30
DIGITS = 6


def new_secret() -> str:
    return base64.b32encode(secrets.token_bytes(20)).decode()


def code_at(secret: str, counter: int) -> str:
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 10**DIGITS:0{DIGITS}d}"


def verify(secret: str, code: str, *, now: float | None = None, window: int = 1) -> bool:
    """Accepts the current step and `window` steps either side, for clock drift."""
    if len(code) != DIGITS or not code.isdigit():
        return False
    step = int((time.time() if now is None else now) // PERIOD)
    return any(
        hmac.compare_digest(code_at(secret, step + d), code) for d in range(-window, window + 1)
    )


def uri(secret: str, account: str, issuer: str) -> str:
    label = quote(f"{issuer}:{account}", safe=":@")
    query = urlencode(
        {
            "secret": secret,
            "issuer": issuer,
            "algorithm": "SHA1",
            "digits": DIGITS,
            "period": PERIOD,
        }
    )
    return f"otpauth://totp/{label}?{query}"


def qr_svg(text: str) -> str:
    """The QR code as an SVG document (auth-js turns it into a data: URL itself)."""
    return str(segno.make(text, error="m").svg_inline(scale=4))
