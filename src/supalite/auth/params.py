"""Typed reads of a JSON request body: a wrong type is GoTrue's 400 bad_json, not a crash."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from supalite.auth.errors import AuthError


def _bad(key: str, expected: str) -> AuthError:
    return AuthError(
        400, "bad_json", f"Could not parse request body as JSON: field '{key}' must be {expected}"
    )


def text(body: Mapping[str, Any], key: str) -> str:
    """A string field; absent or null is ""."""
    v = body.get(key)
    if v is None:
        return ""
    if not isinstance(v, str):
        raise _bad(key, "a string")
    return v


def optional_text(body: Mapping[str, Any], key: str) -> str | None:
    """A string field where absent (None) differs from "" (e.g. a password being cleared)."""
    v = body.get(key)
    if v is None or isinstance(v, str):
        return v
    raise _bad(key, "a string")


def obj(body: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    v = body.get(key)
    if v is None:
        return None
    if not isinstance(v, dict):
        raise _bad(key, "an object")
    return v


def optional_flag(body: Mapping[str, Any], key: str) -> bool | None:
    """A boolean field where absent (None) means "leave as it is"."""
    v = body.get(key)
    if v is None or isinstance(v, bool):
        return v
    raise _bad(key, "true or false")


def flag(body: Mapping[str, Any], key: str, default: bool) -> bool:
    v = optional_flag(body, key)
    return default if v is None else v


def pkce(body: Mapping[str, Any]) -> tuple[str, str] | None:
    """(challenge, method) when the client asked for the PKCE flow, else None (implicit)."""
    challenge = text(body, "code_challenge")
    method = text(body, "code_challenge_method").lower()
    if not challenge and not method:
        return None
    if not challenge or method not in ("s256", "plain"):
        raise AuthError(
            400,
            "validation_failed",
            "PKCE flow requires code_challenge_method and code_challenge",
        )
    if not 43 <= len(challenge) <= 128:
        raise AuthError(
            400, "validation_failed", "code challenge has to be between 43 and 128 characters"
        )
    return challenge, method
