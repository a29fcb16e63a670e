"""Buckets (`/bucket`): create, get, list, update, empty, delete — each in the caller's role,
so RLS on `storage.buckets` (and on `storage.objects` for empty) decides, as on Supabase."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from supalite.storage import errors as E
from supalite.storage import sql as S
from supalite.storage.context import Caller, StorageContext
from supalite.storage.names import check_bucket_name, parse_size


def _mime_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise E.invalid_parameter("body/allowed_mime_types must be array")
    for v in value:
        if "/" not in v or len(v) > 255:
            raise E.invalid_request(f"Invalid mime type {v}")
    return value or None


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    raise E.invalid_parameter(f"body/{name} must be boolean")


def _body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise E.invalid_request("body must be object")
    return body


def _check_limit(ctx: StorageContext, limit: int | None) -> None:
    if limit is not None and limit > ctx.global_limit:
        raise E.StorageError(
            413, "EntityTooLarge",
            "The bucket exceeded the maximum allowed size", error="Payload too large",
        )  # fmt: skip


async def list_buckets(
    ctx: StorageContext,
    caller: Caller,
    *,
    limit: int | None,
    offset: int,
    sort_column: str,
    sort_order: str,
    search: str | None,
) -> str:
    order: S.SortOrder = "desc" if sort_order == "desc" else "asc"
    async with ctx.tx(caller) as conn:
        out: str = await conn.fetchval(
            S.list_buckets(sort_column, order), search or None, limit, offset
        )
    return out


async def get_bucket(ctx: StorageContext, caller: Caller, bucket_id: str) -> str:
    async with ctx.tx(caller) as conn:
        out: str | None = await conn.fetchval(S.GET_BUCKET, bucket_id)
    if out is None:
        raise E.no_such_bucket()
    return out


async def create_bucket(ctx: StorageContext, caller: Caller, body: Any) -> dict[str, Any]:
    body = _body(body)
    name = body.get("name")
    if not isinstance(name, str):
        raise E.invalid_request("body must have required property 'name'")
    check_bucket_name(name)
    bucket_id = body.get("id") or name
    if not isinstance(bucket_id, str):
        raise E.invalid_parameter("body/id must be string")
    check_bucket_name(bucket_id)
    public = _bool(body.get("public", False), "public")
    limit = parse_size(body.get("file_size_limit"))
    _check_limit(ctx, limit)
    mimes = _mime_list(body.get("allowed_mime_types"))
    owner = caller.owner
    try:
        async with ctx.tx(caller) as conn:
            await conn.execute(
                S.CREATE_BUCKET, bucket_id, name, _uuid_or_none(owner), owner, public, limit, mimes
            )
    except asyncpg.UniqueViolationError as e:
        raise E.bucket_already_exists() from e
    except asyncpg.PostgresError as e:
        raise E.from_postgres(e) from e
    return {"name": bucket_id}


async def update_bucket(
    ctx: StorageContext, caller: Caller, bucket_id: str, body: Any
) -> dict[str, Any]:
    body = _body(body)
    has_public = "public" in body and body["public"] is not None
    public = _bool(body["public"], "public") if has_public else None
    has_limit = "file_size_limit" in body
    limit = parse_size(body.get("file_size_limit")) if has_limit else None
    _check_limit(ctx, limit)
    has_mimes = "allowed_mime_types" in body
    mimes = _mime_list(body.get("allowed_mime_types")) if has_mimes else None
    try:
        async with ctx.tx(caller) as conn:
            status = await conn.execute(
                S.UPDATE_BUCKET, bucket_id, has_public, public, has_limit, limit, has_mimes, mimes
            )
    except asyncpg.PostgresError as e:
        raise E.from_postgres(e) from e
    if status.endswith(" 0"):
        raise E.no_such_bucket()
    return {"message": "Successfully updated"}


async def empty_bucket(ctx: StorageContext, caller: Caller, bucket_id: str) -> dict[str, Any]:
    async with ctx.admin() as conn:
        if await conn.fetchrow(S.BUCKET_LIMITS, bucket_id) is None:
            raise E.no_such_bucket()
    try:
        async with ctx.tx(caller) as conn:
            rows = await conn.fetch(S.EMPTY_BUCKET, bucket_id)
    except asyncpg.PostgresError as e:
        raise E.from_postgres(e) from e
    await ctx.delete_blobs([r["version"] for r in rows if r["version"]])
    return {"message": "Successfully emptied"}


async def delete_bucket(ctx: StorageContext, caller: Caller, bucket_id: str) -> dict[str, Any]:
    try:
        async with ctx.tx(caller) as conn:
            status = await conn.execute(S.DELETE_BUCKET, bucket_id)
    except asyncpg.ForeignKeyViolationError as e:
        # Objects still reference it, visible to this caller or not.
        raise E.bucket_not_empty() from e
    except asyncpg.PostgresError as e:
        raise E.from_postgres(e) from e
    if status.endswith(" 0"):
        raise E.no_such_bucket()
    return {"message": "Successfully deleted"}


def _uuid_or_none(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def parse_json(raw: bytes) -> Any:
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise E.invalid_request("Body is not valid JSON") from e
