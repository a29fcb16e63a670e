"""The session store's errors as values with a code, so callers branch on `code`, not on text."""

from __future__ import annotations

from dataclasses import dataclass

# Codes, one per way a call can fail.
SESSION_EXISTS = "session_exists"
SESSION_NOT_FOUND = "session_not_found"
INVALID_INPUT = "invalid_input"
CORRUPT_DATA = "corrupt_data"
DECRYPTION_FAILED = "decryption_failed"
BAD_KEY = "bad_encryption_key"
CONFIG = "config_error"
UNAVAILABLE = "backend_unavailable"
BACKEND = "backend_error"


@dataclass
class SessionStoreError(Exception):
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.message} ({self.code})"


def exists(session_id: str) -> SessionStoreError:
    return SessionStoreError(SESSION_EXISTS, f"Session {session_id} already exists")


def not_found(user_id: str, session_id: str) -> SessionStoreError:
    return SessionStoreError(
        SESSION_NOT_FOUND, f"Session {session_id} not found for userId {user_id}"
    )


def corrupt(session_id: str, column: str, why: str) -> SessionStoreError:
    return SessionStoreError(CORRUPT_DATA, f"Session {session_id}: column {column}: {why}")


def unavailable(backend: str, why: object) -> SessionStoreError:
    return SessionStoreError(UNAVAILABLE, f"{backend} storage unavailable: {why}")
