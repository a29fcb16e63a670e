"""Signed-URL tokens: JWTs (HS256, the project's JWT secret) carrying the `bucket/path` they
are for and a scope (`download` or `upload`), as Supabase Storage signs them.  A token is good
for its own path, its own scope and its own lifetime, nothing else.

Errors are Supabase's: a token that does not verify (bad signature, malformed, expired) is
`InvalidJWT` with jose's message; a valid token for another path or scope is
`InvalidSignature`.
"""

from __future__ import annotations

import time
from typing import Any

import jwt

from supalite.storage import errors as E

DOWNLOAD = "download"
UPLOAD = "upload"
UPLOAD_EXPIRES_IN = 7200  # seconds, Supabase's uploadSignedUrlExpirationTime
MAX_EXPIRES_IN = 10 * 365 * 24 * 3600


def expires_in(value: Any) -> int:
    """`expiresIn` as the clients send it: an integer ≥ 1 (storage3 sends it as a string)."""
    if isinstance(value, bool):
        raise E.invalid_parameter("body/expiresIn must be integer")
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise E.invalid_parameter("body/expiresIn must be integer")
    if value < 1:
        raise E.invalid_parameter("body/expiresIn must be >= 1")
    if value > MAX_EXPIRES_IN:
        raise E.invalid_parameter("body/expiresIn is too large")
    return value


def sign(secret: str, url: str, scope: str, lifetime: int, **extra: Any) -> str:
    now = int(time.time())
    # `url` and `scope` last, so nothing passed in `extra` can override them.
    claims = {**extra, "iat": now, "exp": now + lifetime, "url": url, "scope": scope}
    return jwt.encode(claims, secret, algorithm="HS256")


def verify(secret: str, token: str, url: str, scope: str) -> dict[str, Any]:
    """The token's claims if it was signed here for `url` and `scope` and is not expired."""
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], options={"verify_aud": False, "require": ["exp"]}
        )
    except jwt.ExpiredSignatureError as e:
        raise E.invalid_jwt('"exp" claim timestamp check failed') from e
    except jwt.InvalidSignatureError as e:
        raise E.invalid_jwt("signature verification failed") from e
    except jwt.MissingRequiredClaimError as e:
        raise E.invalid_jwt('missing required "exp" claim') from e
    except jwt.PyJWTError as e:
        raise E.invalid_jwt("Invalid Compact JWS") from e
    if not isinstance(claims, dict):
        raise E.invalid_jwt("Invalid Compact JWS")
    token_scope = claims.get("scope")
    if scope == UPLOAD:
        ok = token_scope == UPLOAD or (token_scope is None and "upsert" in claims)
    else:
        ok = token_scope == DOWNLOAD or (token_scope is None and "upsert" not in claims)
    if not ok:
        raise E.invalid_signature(f"Token is not scoped for {scope}")
    if claims.get("url") != url:
        raise E.invalid_signature()
    return claims
