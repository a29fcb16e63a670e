"""Auth's errors as values, rendered the way GoTrue renders them.

Two body shapes, chosen by the request's `X-Supabase-Api-Version` header as GoTrue chooses:
`{code, error_code, msg}` without it, `{code: <error_code>, message}` with 2024-01-01 or later
(both official SDKs send it).  `x-sb-error-code` carries the code either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

API_VERSION_HEADER = "X-Supabase-Api-Version"
API_VERSION_2024 = "2024-01-01"


@dataclass
class AuthError(Exception):
    status: int
    error_code: str
    msg: str
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. weak_password: {reasons}
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.msg

    def body(self, versioned: bool) -> dict[str, Any]:
        if versioned:
            return {"code": self.error_code, "message": self.msg, **self.extra}
        return {"code": self.status, "error_code": self.error_code, "msg": self.msg, **self.extra}


@dataclass
class OAuthError(Exception):
    """The OAuth2 token endpoint's own shape: 400 `{error, error_description}`."""

    error: str
    description: str
    status: int = 400

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "error_description": self.description}


def bad_request(code: str, msg: str) -> AuthError:
    return AuthError(400, code, msg)


def unauthorized(code: str, msg: str) -> AuthError:
    return AuthError(401, code, msg)


def forbidden(code: str, msg: str) -> AuthError:
    return AuthError(403, code, msg)


def not_found(code: str, msg: str) -> AuthError:
    return AuthError(404, code, msg)


def unprocessable(code: str, msg: str) -> AuthError:
    return AuthError(422, code, msg)


def too_many(code: str, msg: str) -> AuthError:
    return AuthError(429, code, msg)


def validation(msg: str) -> AuthError:
    return AuthError(400, "validation_failed", msg)


def internal(msg: str) -> AuthError:
    return AuthError(500, "unexpected_failure", msg)


INVALID_CREDENTIALS = AuthError(400, "invalid_credentials", "Invalid login credentials")
NOT_ADMIN = AuthError(403, "not_admin", "User not allowed")
USER_NOT_FOUND = AuthError(404, "user_not_found", "User not found")
EMAIL_EXISTS = AuthError(
    422, "email_exists", "A user with this email address has already been registered"
)
OTP_EXPIRED = AuthError(403, "otp_expired", "Token has expired or is invalid")
LINK_EXPIRED = AuthError(403, "otp_expired", "Email link is invalid or has expired")
