"""Storage's errors as values, rendered the way Supabase Storage renders them.

The body is `{"statusCode": "<logical status>", "error": …, "message": …, "code": …}`, and the
HTTP status is *not* the logical one: it is 500 for server errors and 400 for everything else
(Supabase's `userStatusCode`), so `NoSuchKey` travels as HTTP 400 with `"statusCode": "404"`.
storage-js and storage3 read `statusCode`, `error` and `message` from the body.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg


@dataclass
class StorageError(Exception):
    status: int  # the logical status, sent as a string in the body
    code: str  # Supabase's ErrorCode
    message: str
    error: str | None = None  # the older `error` field, where Supabase sets one; else the code
    http_status: int | None = None  # only where Supabase overrides the 400/500 rule
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message

    @property
    def response_status(self) -> int:
        if self.http_status is not None:
            return self.http_status
        return 500 if self.status == 500 else 400

    def body(self) -> dict[str, Any]:
        return {
            "statusCode": str(self.status),
            "error": self.error or self.code,
            "message": self.message,
            "code": self.code,
        }


def no_such_bucket() -> StorageError:
    return StorageError(404, "NoSuchBucket", "Bucket not found", error="Bucket not found")


def no_such_key() -> StorageError:
    return StorageError(404, "NoSuchKey", "Object not found", error="not_found")


def asset_missing() -> StorageError:
    """The row exists but its bytes do not (Supabase's renderer answer for a backend 404)."""
    return StorageError(404, "NoSuchKey", "The resource was not found", error="Not found")


def invalid_key(key: str) -> StorageError:
    # The key is echoed as Supabase does, but never more than a screenful of it.
    shown = key if len(key) <= 200 else key[:200] + "…"
    return StorageError(400, "InvalidKey", f"Invalid key: {shown}")


def invalid_bucket_name() -> StorageError:
    return StorageError(400, "InvalidBucketName", "Bucket name invalid", error="Invalid Input")


def invalid_request(message: str) -> StorageError:
    return StorageError(400, "InvalidRequest", message)


def missing_parameter(name: str) -> StorageError:
    return StorageError(400, "MissingParameter", f"Missing Required Parameter {name}")


def invalid_parameter(message: str) -> StorageError:
    return StorageError(400, "InvalidParameter", message)


def no_content() -> StorageError:
    return StorageError(400, "InvalidRequest", "No content provided")


def entity_too_large() -> StorageError:
    return StorageError(
        413,
        "EntityTooLarge",
        "The object exceeded the maximum allowed size",
        error="Payload too large",
    )


def invalid_mime_type(mime: str) -> StorageError:
    return StorageError(
        415, "InvalidMimeType", f"mime type {mime} is not supported", error="invalid_mime_type"
    )


def access_denied(message: str = "Access denied") -> StorageError:
    return StorageError(403, "AccessDenied", message, error="Unauthorized")


def rls_denied() -> StorageError:
    return access_denied("new row violates row-level security policy")


def already_exists() -> StorageError:
    return StorageError(
        409, "ResourceAlreadyExists", "The resource already exists", error="Duplicate"
    )


def bucket_already_exists() -> StorageError:
    return StorageError(
        409, "BucketAlreadyExists", "The resource already exists", error="Duplicate"
    )


def bucket_not_empty() -> StorageError:
    return StorageError(409, "ResourceNotEmpty", "The bucket you tried to delete is not empty")


def invalid_jwt(message: str) -> StorageError:
    return StorageError(400, "InvalidJWT", message)


def invalid_signature(message: str = "Invalid signature") -> StorageError:
    return StorageError(400, "InvalidSignature", message)


def invalid_range() -> StorageError:
    return StorageError(400, "InvalidRange", "invalid range provided", error="invalid_range")


def internal() -> StorageError:
    return StorageError(500, "InternalError", "Internal Server Error", error="Internal")


def database_unavailable() -> StorageError:
    return StorageError(
        429, "SlowDown", "Too many connections issued to the database",
        error="too_many_connections", http_status=429,
    )  # fmt: skip


def from_postgres(e: asyncpg.PostgresError) -> StorageError:
    """Supabase's mapping of database errors (`DBError.fromDBError`)."""
    state = getattr(e, "sqlstate", None)
    message = str(getattr(e, "message", "") or e)
    if state == "42501":
        if "row-level security" in message:
            return rls_denied()
        return access_denied(message)
    if state == "23505":
        return already_exists()
    if state == "23503":
        return StorageError(
            404, "NoSuchBucket", "Bucket not found", error="Bucket not found"
        )  # the only foreign key a caller can miss: objects.bucket_id
    if state == "57014":
        return StorageError(
            544, "DatabaseTimeout", "The connection to the database timed out", http_status=544
        )
    if state in ("22P02", "22023", "42704"):
        return invalid_parameter("Invalid Parameter value")
    if state == "53300":
        return database_unavailable()
    return StorageError(500, "DatabaseError", "database error, code: " + str(state))
