"""The small pieces of Auth, checked against their specifications."""

from __future__ import annotations

import base64

import bcrypt
import pytest

from supalite.auth import totp
from supalite.auth.admin import parse_ban_duration
from supalite.auth.errors import AuthError
from supalite.auth.passwords import check_strength, hash_password_sync, verify_password
from supalite.auth.ratelimit import RateLimiter
from supalite.auth.redirects import choose, is_allowed
from supalite.auth.tokens import code_challenge_matches, token_hash

RFC6238_SECRET = base64.b32encode(b"12345678901234567890").decode()


@pytest.mark.parametrize(
    ("t", "code"),
    [
        (59, "287082"),
        (1111111109, "081804"),
        (1111111111, "050471"),
        (1234567890, "005924"),
        (2000000000, "279037"),
        (20000000000, "353130"),
    ],
)  # RFC 6238 appendix B, SHA-1, truncated to 6 digits
def test_totp_matches_rfc_6238_vectors(t: int, code: str) -> None:
    assert totp.code_at(RFC6238_SECRET, t // 30) == code
    assert totp.verify(RFC6238_SECRET, code, now=t)
    assert totp.verify(RFC6238_SECRET, code, now=t + 30)  # one step of drift
    assert not totp.verify(RFC6238_SECRET, code, now=t + 90)


def test_totp_uri_and_qr() -> None:
    uri = totp.uri("ABC", "a@b.co", "My App")
    assert uri.startswith("otpauth://totp/My%20App:a@b.co?secret=ABC&issuer=My+App")
    assert totp.qr_svg(uri).startswith("<svg")


async def test_passwords_are_gotrue_compatible_bcrypt() -> None:
    h = hash_password_sync("correct horse")
    assert h.startswith("$2a$10$")
    assert await verify_password("correct horse", h)
    assert not await verify_password("wrong", h)
    # A hash GoTrue (Go's bcrypt, $2a$) or another tool ($2b$) wrote verifies too.
    other = bcrypt.hashpw(b"imported", bcrypt.gensalt(4, prefix=b"2b")).decode()
    assert await verify_password("imported", other)
    assert not await verify_password("x", None) and not await verify_password("x", "garbage")


def test_password_strength_reasons() -> None:
    with pytest.raises(AuthError) as e:
        check_strength("abc", 6, "letters_digits")
    assert e.value.extra["weak_password"]["reasons"] == ["length", "characters"]
    check_strength("abc123", 6, "letters_digits")


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("http://127.0.0.1:3000/welcome", True),  # the site itself
        ("http://127.0.0.1:9999/cb", True),  # loopback: any port
        ("https://app.example.com/auth/cb", True),  # allow-listed glob
        ("https://app.example.com/a/b", False),  # * stays within one path segment
        ("https://x.preview.example.com/any/where", True),  # ** crosses them
        ("https://evil.com/?https://app.example.com/auth/cb", False),
        ("https://app.example.com.evil.com/auth/cb", False),
        ("javascript:alert(1)", False),
        ("http://2130706433/", False),  # decimal IPs are refused
        ("", False),
    ],
)
def test_redirect_allow_list(url: str, ok: bool) -> None:
    allow = ["https://app.example.com/auth/*", "https://*.preview.example.com/**"]
    assert is_allowed(url, "http://127.0.0.1:3000", allow) is ok
    assert choose(url, "http://127.0.0.1:3000", allow) == (url if ok else "http://127.0.0.1:3000")


def test_pkce_and_token_hash() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636 appendix B
    assert code_challenge_matches("s256", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", verifier)
    assert not code_challenge_matches(
        "s256", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN", verifier
    )
    assert code_challenge_matches("plain", verifier, verifier)
    assert token_hash("a@b.co", "123456") == token_hash("a@b.co", "123456")
    assert len(token_hash("a@b.co", "123456")) == 56  # sha224 hex, as GoTrue


def test_ban_durations() -> None:
    assert parse_ban_duration("24h").total_seconds() == 86400  # type: ignore[union-attr]
    assert parse_ban_duration("1h30m").total_seconds() == 5400  # type: ignore[union-attr]
    assert parse_ban_duration("none") is None
    for bad in ("", "24", "1d", "h", "10h-"):
        with pytest.raises(AuthError):
            parse_ban_duration(bad)


def test_rate_limiter_token_bucket() -> None:
    now = [0.0]
    limiter = RateLimiter({"sign_in_sign_ups": 3}, clock=lambda: now[0])
    for _ in range(3):
        limiter.hit("sign_in_sign_ups", "1.2.3.4")
    with pytest.raises(AuthError) as e:
        limiter.hit("sign_in_sign_ups", "1.2.3.4")
    assert e.value.status == 429 and e.value.error_code == "over_request_rate_limit"
    limiter.hit("sign_in_sign_ups", "5.6.7.8")  # per address
    now[0] += 100.0  # 300 s window, 3 tokens: one back per 100 s
    limiter.hit("sign_in_sign_ups", "1.2.3.4")
    with pytest.raises(AuthError):
        limiter.hit("sign_in_sign_ups", "1.2.3.4")


def test_rate_limiter_charges_failures_and_checks_without_taking() -> None:
    now = [0.0]
    limiter = RateLimiter({"sign_in_sign_ups": 2, "token_refresh": 0}, clock=lambda: now[0])
    for _ in range(5):
        limiter.check("sign_in_sign_ups", "address:a@example.com")  # checking takes nothing
    limiter.charge("sign_in_sign_ups", "address:a@example.com")
    limiter.charge("sign_in_sign_ups", "address:a@example.com")
    limiter.charge("sign_in_sign_ups", "address:a@example.com")  # already empty: no raise
    with pytest.raises(AuthError) as e:
        limiter.check("sign_in_sign_ups", "address:a@example.com")
    assert e.value.status == 429
    limiter.check("sign_in_sign_ups", "address:b@example.com")
    now[0] += 150.0  # 300 s window, 2 tokens: one back per 150 s
    limiter.check("sign_in_sign_ups", "address:a@example.com")
    limiter.charge("token_refresh", "x")  # 0 is unlimited
    limiter.check("token_refresh", "x")
