"""Channel tokens: the gateway verifies them; this maps its answers to Realtime's messages.

Realtime also insists on `role` and `exp` claims (a token without an expiry could never be
closed out), and tells how long ago a token expired.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from supalite.gateway import Claims, Gateway, GatewayError


@dataclass
class TokenError(Exception):
    code: str  # Supabase's log code, the prefix of join errors ("InvalidJWTToken")
    message: str

    @property
    def reason(self) -> str:
        return f"{self.code}: {self.message}"


def _expired_by(token: str) -> int | None:
    """Seconds since an (unverified) token expired, for the message; None if unknown."""
    try:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    except jwt.PyJWTError:
        return None
    return max(0, int(time.time() - exp)) if isinstance(exp, (int, float)) else None


def check(gateway: Gateway, token: str) -> tuple[Claims, float]:
    """(claims, expiry as a unix time) of a channel token, or TokenError."""
    try:
        claims = gateway.verify(token)
    except GatewayError as e:
        if e.code == "PGRST303" and "expired" in e.message:
            ago = _expired_by(token)
            raise TokenError(
                "InvalidJWTToken", f"Token has expired {ago or 0} seconds ago"
            ) from None
        if "signature" in e.message.lower() or "algorithm" in e.message.lower():
            raise TokenError("JwtSignatureError", "Failed to validate JWT signature") from None
        raise TokenError("MalformedJWT", "The token provided is not a valid JWT") from None
    exp = claims.get("exp")
    role = claims.get("role")
    if not isinstance(exp, (int, float)) or not isinstance(role, str) or not role:
        raise TokenError("InvalidJWTToken", "Fields `role` and `exp` are required in JWT")
    if exp <= time.time():
        # The gateway allows PostgREST's 30 s of clock skew; Realtime does not.
        raise TokenError(
            "InvalidJWTToken", f"Token has expired {int(time.time() - exp)} seconds ago"
        )
    return Claims(role, claims, token, True), float(exp)
