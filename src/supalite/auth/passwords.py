"""Password hashing and strength rules, as GoTrue has them.

Hashes are bcrypt with GoTrue's cost (10) and its `$2a$` prefix, so users exported from
Supabase log in here and the other way round.  Hashing runs in a thread: bcrypt releases the
GIL, so sign-ins on other connections go on meanwhile.
"""

from __future__ import annotations

import asyncio
import string

import bcrypt

from supalite.auth.errors import AuthError, validation

COST = 10
_MAX_BYTES = 72  # bcrypt ignores (here: refuses) anything longer

# config.toml `password_requirements` → the character classes each password must contain.
REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "": (),
    "letters_digits": (string.ascii_letters, string.digits),
    "lower_upper_letters_digits": (
        string.ascii_lowercase,
        string.ascii_uppercase,
        string.digits,
    ),
    "lower_upper_letters_digits_symbols": (
        string.ascii_lowercase,
        string.ascii_uppercase,
        string.digits,
        "!@#$%^&*()_+-=[]{};'\\:\"|<>?,./`~",
    ),
}

# Compared against when the user does not exist, so a miss costs what a hit costs and the
# response time does not tell whether an address is registered.
_DUMMY_HASH = bcrypt.hashpw(b"supalite-no-such-user", bcrypt.gensalt(COST, prefix=b"2a"))


def _encode(password: str) -> bytes:
    raw = password.encode()
    if len(raw) > _MAX_BYTES:
        raise validation(f"Password cannot be longer than {_MAX_BYTES} characters")
    return raw


def hash_password_sync(password: str) -> str:
    return bcrypt.hashpw(_encode(password), bcrypt.gensalt(COST, prefix=b"2a")).decode()


async def hash_password(password: str) -> str:
    raw = _encode(password)
    hashed = await asyncio.to_thread(bcrypt.hashpw, raw, bcrypt.gensalt(COST, prefix=b"2a"))
    return hashed.decode()


async def verify_password(password: str, hashed: str | None) -> bool:
    """True when `password` matches; always spends one bcrypt verify, hash or no hash."""
    raw = password.encode()[:_MAX_BYTES]
    target = hashed.encode() if hashed and hashed.startswith("$2") else _DUMMY_HASH
    try:
        ok = await asyncio.to_thread(bcrypt.checkpw, raw, target)
    except ValueError:  # a corrupt stored hash: never a match
        return False
    return ok and target is not _DUMMY_HASH


def check_strength(password: str, min_length: int, requirements: str) -> None:
    """GoTrue's 422 weak_password with its reasons and messages, or nothing."""
    reasons: list[str] = []
    messages: list[str] = []
    if len(password) < min_length:
        reasons.append("length")
        messages.append(f"Password should be at least {min_length} characters.")
    classes = REQUIREMENTS.get(requirements, ())
    if classes and not all(any(c in cls for c in password) for cls in classes):
        reasons.append("characters")
        messages.append(
            "Password should contain at least one character of each: " + ", ".join(classes) + "."
        )
    if reasons:
        message = " ".join(messages)
        raise AuthError(
            422, "weak_password", message, extra={"weak_password": {"reasons": reasons}}
        )
    _encode(password)
