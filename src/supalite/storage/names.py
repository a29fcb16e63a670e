"""What Supabase Storage accepts as bucket names, object keys, sizes and MIME types.

The character sets are Supabase's (`isValidKey`, `isValidBucketName`: S3-safe characters).
Beyond them supalite refuses what a key must never carry on any backend: `.`/`..` segments, a
leading `/`, and keys longer than S3's 1024 bytes; control characters (NUL included) are
already outside the allowed set.
"""

from __future__ import annotations

import re
from typing import Any

from supalite.storage import errors as E

_KEY_CHARS = re.compile(r"[A-Za-z0-9_/!.*'() &$=@;:+,?-]*")
_BUCKET_CHARS = re.compile(r"[A-Za-z0-9_!.*'() &$=@;:+,?-]*")
MAX_KEY_BYTES = 1024
MAX_BUCKET_NAME = 100
EMPTY_FOLDER = ".emptyFolderPlaceholder"


def is_valid_key(key: str) -> bool:
    if not key or len(key.encode()) > MAX_KEY_BYTES or not _KEY_CHARS.fullmatch(key):
        return False
    if key.startswith("/"):
        return False
    return not any(seg in (".", "..") for seg in key.split("/"))


def check_key(key: str) -> str:
    if not is_valid_key(key):
        raise E.invalid_key(key)
    return key


def is_valid_bucket_name(name: str) -> bool:
    return (
        0 < len(name) <= MAX_BUCKET_NAME
        and name not in (".", "..")
        and bool(_BUCKET_CHARS.fullmatch(name))
    )


def check_bucket_name(name: str) -> str:
    if not is_valid_bucket_name(name):
        raise E.invalid_bucket_name()
    return name


_SIZE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*(gb|mb|kb|b|gib|mib|kib)$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3,
          "kib": 1024, "mib": 1024**2, "gib": 1024**3}  # fmt: skip


def parse_size(value: Any) -> int | None:
    """A bucket's `file_size_limit`: bytes, or a string such as "20MB" (Supabase's decimal
    units) or "50MiB" (the CLI's); null or 0 for none."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise E.invalid_request("Invalid file size format, hint: use 20GB / 20MB / 30KB / 3B")
    if isinstance(value, (int, float)):
        n = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        n = int(value.strip())
    elif isinstance(value, str) and (m := _SIZE.match(value.strip())):
        n = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    else:
        raise E.invalid_request("Invalid file size format, hint: use 20GB / 20MB / 30KB / 3B")
    if n < 0:
        raise E.invalid_request("Invalid file size format, hint: use 20GB / 20MB / 30KB / 3B")
    return n or None


def mime_allowed(mime: str, allowed: list[str] | tuple[str, ...]) -> bool:
    """Supabase's `validateMimeType`: `type/subtype` against entries, `type/*` wildcards."""
    base = mime.split(";", 1)[0].strip().lower()
    if "/" not in base:
        return False
    kind, sub = base.split("/", 1)
    for entry in allowed:
        a_kind, _, a_sub = entry.strip().lower().partition("/")
        if a_kind == kind and a_sub in ("*", sub):
            return True
    return False


def check_mime(mime: str, allowed: list[str] | tuple[str, ...] | None) -> None:
    if allowed and not mime_allowed(mime, allowed):
        raise E.invalid_mime_type(mime)
