"""Encryption at rest, byte-compatible with mcp-ts: AES-256-GCM, a fresh 12-byte IV per value,
the 16-byte tag, no AAD, over the value's JSON text, stored as `enc:1:<iv>:<tag>:<ciphertext>`
in lower-case hex.

Where mcp-ts is lenient this is strict: a key that is not 64 hex characters is an error (mcp-ts
zero-pads or truncates it), and a value that does not decrypt raises (mcp-ts hands back the
ciphertext as if it were the value).  `STORAGE_ENCRYPTION_KEY_PREVIOUS` is tried on read only,
so a key can be rotated while old rows are still being rewritten.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from supalite.sessions import errors

PREFIX = "enc:1:"
KEY_ENV = "STORAGE_ENCRYPTION_KEY"
PREVIOUS_KEY_ENV = "STORAGE_ENCRYPTION_KEY_PREVIOUS"
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_HEX = re.compile(r"^[0-9a-f]*$")


def parse_key(text: str, name: str = KEY_ENV) -> bytes:
    if not _HEX64.match(text):
        raise errors.SessionStoreError(
            errors.BAD_KEY,
            f"{name} must be 64 hex characters (32 bytes), got {len(text)} characters"
            + ("" if len(text) != 64 else " with non-hex ones")
            + "; generate one with: python -c 'import secrets; print(secrets.token_hex(32))'",
        )
    return bytes.fromhex(text)


def is_encrypted(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


class Cipher:
    """Seals values with the current key; opens them with the current or the previous one."""

    def __init__(self, key: bytes | None = None, previous: bytes | None = None) -> None:
        for k in (key, previous):
            if k is not None and len(k) != 32:
                raise errors.SessionStoreError(errors.BAD_KEY, "an AES-256 key is 32 bytes")
        if previous is not None and key is None:
            raise errors.SessionStoreError(
                errors.BAD_KEY, f"{PREVIOUS_KEY_ENV} is set but {KEY_ENV} is not"
            )
        self._current = AESGCM(key) if key else None
        self._previous = AESGCM(previous) if previous else None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Cipher:
        env = os.environ if env is None else env
        key = env.get(KEY_ENV) or None
        previous = env.get(PREVIOUS_KEY_ENV) or None
        return cls(
            parse_key(key) if key else None,
            parse_key(previous, PREVIOUS_KEY_ENV) if previous else None,
        )

    @property
    def enabled(self) -> bool:
        return self._current is not None

    def seal(self, value: Any) -> Any:
        """The stored form: `enc:1:…` when a key is set, the value itself otherwise."""
        if value is None or self._current is None:
            return value
        iv = os.urandom(12)
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        sealed = self._current.encrypt(iv, text.encode(), None)
        return f"{PREFIX}{iv.hex()}:{sealed[-16:].hex()}:{sealed[:-16].hex()}"

    def open(self, value: Any, where: str = "value") -> Any:
        """The value a stored form holds; plain (legacy or key-less) values pass through."""
        if not is_encrypted(value):
            return value
        parts = value.split(":")
        if len(parts) != 5 or not all(_HEX.match(p) for p in parts[2:]):
            raise errors.SessionStoreError(
                errors.DECRYPTION_FAILED, f"{where}: malformed encrypted value"
            )
        iv, tag, ct = (bytes.fromhex(p) for p in parts[2:])
        if len(iv) != 12 or len(tag) != 16:
            raise errors.SessionStoreError(
                errors.DECRYPTION_FAILED, f"{where}: malformed encrypted value (IV or tag length)"
            )
        keys = [k for k in (self._current, self._previous) if k is not None]
        if not keys:
            raise errors.SessionStoreError(
                errors.DECRYPTION_FAILED, f"{where} is encrypted but {KEY_ENV} is not set"
            )
        for k in keys:
            try:
                plain = k.decrypt(iv, ct + tag, None)
            except InvalidTag:
                continue
            try:
                return json.loads(plain)
            except ValueError as e:
                raise errors.SessionStoreError(
                    errors.CORRUPT_DATA, f"{where}: decrypted text is not JSON: {e}"
                ) from e
        raise errors.SessionStoreError(
            errors.DECRYPTION_FAILED,
            f"{where}: cannot decrypt (wrong {KEY_ENV}, or the value was altered)",
        )

    def is_current(self, value: Any) -> bool:
        """True when the stored form needs no rewrite for the current key."""
        if value is None:
            return True
        if self._current is None:
            return not is_encrypted(value)
        if not is_encrypted(value):
            return False
        parts = value.split(":")
        try:
            iv, tag, ct = (bytes.fromhex(p) for p in parts[2:])
            self._current.decrypt(iv, ct + tag, None)
        except (ValueError, InvalidTag):
            return False
        return True
