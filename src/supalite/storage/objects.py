"""Objects: upload, download, info, list, move, copy, remove, signed URLs — no HTTP here.

Every metadata read and write runs in the caller's transaction (their role, their claims), so
RLS on `storage.objects` decides as on Supabase: upload needs `insert` (upsert also `select` +
`update`), download/list/sign need `select`, move needs `update`, copy `insert` + `select`,
remove `delete` + `select`.  Public and signed downloads read as the storage superuser, as
Supabase does.

An upload is two short transactions around the bytes: a permission check (the row is written
and rolled back, so RLS and constraints answer before a byte is stored), then the bytes go to a
new blob named by a fresh version, then the row naming that version commits.  The blob is
invisible until then; a rejected or failed commit deletes it; a replaced version's blob is
deleted after the commit.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from supalite.storage import errors as E
from supalite.storage import signing
from supalite.storage import sql as S
from supalite.storage.backends import Blob, BlobMissing, TooLarge
from supalite.storage.context import Caller, StorageContext, service_caller
from supalite.storage.names import EMPTY_FOLDER, check_key, check_mime
from supalite.storage.uploads import parse_user_metadata, read_upload

MAX_OBJECTS_PER_REQUEST = 1000
CHECK_FIRST_ABOVE = 1024 * 1024  # bytes (see `_check_first`)
_OPEN_ATTEMPTS = 25


class _Rollback(Exception):
    """Ends a permission check: everything it wrote is rolled back."""


@dataclass(frozen=True)
class ObjectRow:
    id: str
    name: str
    bucket_id: str
    version: str | None
    metadata: dict[str, Any]
    user_metadata: dict[str, Any] | None
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def from_record(cls, r: asyncpg.Record) -> ObjectRow:
        return cls(
            id=str(r["id"]),
            name=r["name"],
            bucket_id=r["bucket_id"],
            version=r["version"],
            metadata=_json(r["metadata"]) or {},
            user_metadata=_json(r["user_metadata"]),
            created_at=r["created_at"],
            updated_at=r["updated_at"],
        )

    @property
    def etag(self) -> str | None:
        v = self.metadata.get("eTag")
        return v if isinstance(v, str) else None

    @property
    def mimetype(self) -> str:
        v = self.metadata.get("mimetype")
        return v if isinstance(v, str) and v else "application/octet-stream"

    @property
    def cache_control(self) -> str:
        v = self.metadata.get("cacheControl")
        return v if isinstance(v, str) and v else "no-cache"


def _json(v: Any) -> Any:
    return json.loads(v) if isinstance(v, str) else v


def _uuid(value: str | None) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _pg(e: asyncpg.PostgresError) -> E.StorageError:
    return E.from_postgres(e)


# ------------------------------------------------------------------------------ uploads


async def bucket_limits(
    ctx: StorageContext, bucket_id: str, *, register: str | None = None
) -> asyncpg.Record:
    """The bucket's limits (NoSuchBucket if there is none), as the storage superuser; with
    `register`, that blob version is noted in the same round trip (if the bucket exists) as
    `StorageContext.register_blob` does."""
    async with ctx.admin() as conn:
        if register is None:
            bucket = await conn.fetchrow(S.BUCKET_LIMITS, bucket_id)
        else:
            bucket = await conn.fetchrow(S.BUCKET_LIMITS_REGISTER, bucket_id, register)
    if bucket is None:
        raise E.no_such_bucket()
    return bucket


async def _write_row(
    conn: asyncpg.Connection,
    *,
    upsert: bool,
    bucket_id: str,
    name: str,
    owner: str | None,
    metadata: dict[str, Any],
    user_metadata: dict[str, Any] | None,
    version: str,
) -> tuple[str, str | None]:
    """Insert (or upsert) the row; (its id, the version it replaced)."""
    new_id = uuid.uuid4()
    replaced: str | None = None
    if upsert:
        await conn.execute(S.LOCK_NAME, bucket_id, name)
        current = await conn.fetchrow(S.LOCK_CURRENT, bucket_id, name)
        if current is not None:
            new_id, replaced = current["id"], current["version"]
    await conn.execute(
        S.UPSERT_OBJECT if upsert else S.INSERT_OBJECT,
        new_id, bucket_id, name, _uuid(owner), owner, json.dumps(metadata),
        json.dumps(user_metadata) if user_metadata is not None else None, version,
    )  # fmt: skip
    return str(new_id), replaced


async def check_can_write(
    ctx: StorageContext,
    caller: Caller,
    bucket_id: str,
    name: str,
    *,
    upsert: bool,
    metadata: dict[str, Any],
    user_metadata: dict[str, Any] | None,
) -> None:
    """Would RLS and the constraints let the caller write this row?  (Nothing is kept.)"""
    try:
        async with ctx.tx(caller) as conn:
            await _write_row(
                conn, upsert=upsert, bucket_id=bucket_id, name=name, owner=caller.owner,
                metadata=metadata, user_metadata=user_metadata, version="check",
            )  # fmt: skip
            raise _Rollback
    except _Rollback:
        return
    except asyncpg.PostgresError as e:
        raise _pg(e) from e


async def upload(
    ctx: StorageContext,
    caller: Caller,
    bucket_id: str,
    name: str,
    headers: Mapping[str, str],
    stream: AsyncIterable[bytes],
    *,
    upsert: bool,
    check: bool = True,
) -> dict[str, Any]:
    check_key(name)
    version = str(uuid.uuid4())
    bucket = await bucket_limits(ctx, bucket_id, register=version)
    storing = False
    try:
        body = await read_upload(headers, stream)
        max_size = type_and_size_limit(ctx, bucket, name, body.mimetype)
        if body.declared_length is not None and body.declared_length > max_size:
            raise E.entity_too_large()
        if check and _check_first(headers):
            declared = {"mimetype": body.mimetype, "contentLength": body.declared_length}
            await check_can_write(
                ctx, caller, bucket_id, name, upsert=upsert, metadata=declared,
                user_metadata=body.user_metadata,
            )  # fmt: skip
        storing = True
        stored = await ctx.backend.put(version, body.chunks, max_size=max_size)
    except BaseException as e:
        if storing:
            await ctx.delete_blobs([version])
        else:
            await ctx.forget_blobs([version])  # no byte was written
        if isinstance(e, TooLarge):
            raise E.entity_too_large() from e
        raise
    return await commit_upload(
        ctx, caller, bucket_id, name, version=version, size=stored.size, etag=stored.etag,
        mimetype=body.mimetype, cache_control=body.cache_control,
        user_metadata=body.user_metadata, upsert=upsert,
    )  # fmt: skip


def _check_first(headers: Mapping[str, str]) -> bool:
    """Whether the permission check runs before the bytes are read: for a body of unknown
    length or over `CHECK_FIRST_ABOVE`.  A smaller one is stored first — the commit makes
    the same checks with the same answers, and a refused one deletes its bytes at once — as
    reading it costs less than the separate check's round trips."""
    length = headers.get("content-length", "")
    return not length.isdigit() or int(length) > CHECK_FIRST_ABOVE


def type_and_size_limit(
    ctx: StorageContext, bucket: asyncpg.Record, name: str, mimetype: str
) -> int:
    """Refuse a type outside the bucket's (or the global) allow-list; the size limit of an
    upload of `name` (0 for a folder placeholder, which never has a type or bytes)."""
    if name.endswith(EMPTY_FOLDER):
        return 0
    check_mime(mimetype, bucket["allowed_mime_types"] or ctx.settings.allowed_mime_types)
    return ctx.size_limit(bucket["file_size_limit"])


async def commit_upload(
    ctx: StorageContext,
    caller: Caller,
    bucket_id: str,
    name: str,
    *,
    version: str,
    size: int,
    etag: str | None,
    mimetype: str,
    cache_control: str,
    user_metadata: dict[str, Any] | None,
    upsert: bool,
) -> dict[str, Any]:
    """Commit the row naming a stored blob, in the caller's role: the object appears now.  A
    refused commit deletes the new blob; a successful one the blob it replaced.  `etag` is
    the backend's for the blob (`Stored.etag`): S3's ETag, the MD5 of the bytes unless they
    went up in parts, as Supabase records it."""
    metadata = {
        "eTag": etag or "",
        "size": size,
        "mimetype": mimetype,
        "cacheControl": cache_control,
        "lastModified": _now_iso(),
        "contentLength": size,
        "httpStatusCode": 200,
    }
    return await _commit_row(
        ctx, caller, bucket_id, name, version=version, metadata=metadata,
        user_metadata=user_metadata, upsert=upsert,
    )  # fmt: skip


async def _commit_row(
    ctx: StorageContext,
    caller: Caller,
    bucket_id: str,
    name: str,
    *,
    version: str,
    metadata: dict[str, Any],
    user_metadata: dict[str, Any] | None,
    upsert: bool,
) -> dict[str, Any]:
    """Write the row naming blob `version`, in the caller's role (RLS decides).  A refused
    write deletes that blob; a successful one the blob the row named before."""
    try:
        async with ctx.tx(caller) as conn:
            object_id, replaced = await _write_row(
                conn, upsert=upsert, bucket_id=bucket_id, name=name, owner=caller.owner,
                metadata=metadata, user_metadata=user_metadata, version=version,
            )  # fmt: skip
    except BaseException as e:
        await ctx.delete_blobs([version])
        if isinstance(e, asyncpg.PostgresError):
            raise _pg(e) from e
        raise
    if replaced and replaced != version:
        await ctx.delete_blobs([replaced])
    return {"Id": object_id, "Key": f"{bucket_id}/{name}"}


# ------------------------------------------------------------------------------ reads


async def find_as_caller(
    ctx: StorageContext, caller: Caller, bucket_id: str, name: str
) -> ObjectRow:
    try:
        async with ctx.read(caller) as conn:
            r = await conn.fetchrow(S.FIND_OBJECT, bucket_id, name)
    except asyncpg.PostgresError as e:
        raise _pg(e) from e
    if r is None:
        raise E.no_such_key()
    return ObjectRow.from_record(r)


async def find_as_admin(ctx: StorageContext, bucket_id: str, name: str) -> ObjectRow:
    async with ctx.admin() as conn:
        r = await conn.fetchrow(S.FIND_OBJECT, bucket_id, name)
    if r is None:
        raise E.no_such_key()
    return ObjectRow.from_record(r)


async def find_public(ctx: StorageContext, bucket_id: str, name: str) -> ObjectRow:
    async with ctx.admin() as conn:
        bucket = await conn.fetchrow(S.BUCKET_LIMITS, bucket_id)
        if bucket is None or not bucket["public"]:
            raise E.no_such_bucket()
        r = await conn.fetchrow(S.FIND_OBJECT, bucket_id, name)
    if r is None:
        raise E.no_such_key()
    return ObjectRow.from_record(r)


def verify_download(ctx: StorageContext, bucket_id: str, name: str, token: str | None) -> int:
    """The expiry (unix seconds) of a download token good for this object."""
    return int(download_claims(ctx, bucket_id, name, token)["exp"])


def download_claims(
    ctx: StorageContext, bucket_id: str, name: str, token: str | None
) -> dict[str, Any]:
    """The claims of a download token good for this object (a signed render URL reads its
    transformations from them)."""
    if not token:
        raise E.invalid_request("querystring must have required property 'token'")
    return signing.verify(ctx.jwt_secret, token, f"{bucket_id}/{name}", signing.DOWNLOAD)


async def open_blob(ctx: StorageContext, obj: ObjectRow) -> Blob:
    if not obj.version:
        raise E.asset_missing()
    try:
        return await ctx.backend.open(obj.version)
    except BlobMissing as e:
        raise E.asset_missing() from e


async def open_current(
    ctx: StorageContext, obj: ObjectRow, find: Callable[[], Awaitable[ObjectRow]]
) -> tuple[ObjectRow, Blob]:
    """The object's bytes.  A concurrent overwrite may delete the version just read between
    the lookup and the open; then the row is read again and the new version served (each
    retry means another writer committed, so this ends)."""
    for _ in range(_OPEN_ATTEMPTS):
        try:
            return obj, await open_blob(ctx, obj)
        except E.StorageError as e:
            if e.message != E.asset_missing().message:
                raise
            fresh = await find()
            if fresh.version == obj.version:
                raise
            obj = fresh
    return obj, await open_blob(ctx, obj)


def info_body(obj: ObjectRow) -> dict[str, Any]:
    """`GET /object/info/…` as Supabase's info renderer shapes it."""
    md = obj.metadata
    return {
        "id": obj.id,
        "name": obj.name,
        "version": obj.version,
        "bucket_id": obj.bucket_id,
        "size": md.get("size"),
        "content_type": md.get("mimetype"),
        "cache_control": md.get("cacheControl"),
        "etag": md.get("eTag"),
        "metadata": obj.user_metadata,
        "last_modified": obj.updated_at.isoformat() if obj.updated_at else None,
        "created_at": obj.created_at.isoformat() if obj.created_at else None,
    }


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """A single `bytes=` range → (first, last) inclusive; None to send the whole object.
    Unsatisfiable ranges are Supabase's InvalidRange; multi-ranges are served whole."""
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_s, dash, last_s = spec.strip().partition("-")
    if not dash:
        raise E.invalid_range()
    try:
        if first_s == "":
            n = int(last_s)
            if n <= 0:
                raise E.invalid_range()
            return max(size - n, 0), size - 1
        first = int(first_s)
        last = int(last_s) if last_s else size - 1
    except ValueError as e:
        raise E.invalid_range() from e
    if first < 0 or first >= size or last < first:
        raise E.invalid_range()
    return first, min(last, size - 1)


# ------------------------------------------------------------------------------ listing


def _int(value: Any, name: str, default: int, lo: int = 0, hi: int | None = None) -> int:
    if value is None:
        return default
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise E.invalid_parameter(f"body/{name} must be integer")
    return min(value, hi) if hi is not None else value


def _sort(body: Mapping[str, Any]) -> tuple[str, str]:
    sort = body.get("sortBy") or {}
    if not isinstance(sort, dict):
        raise E.invalid_parameter("body/sortBy must be object")
    column = sort.get("column") or "name"
    order = str(sort.get("order") or "asc").lower()
    return str(column), "desc" if order == "desc" else "asc"


async def list_objects(ctx: StorageContext, caller: Caller, bucket_id: str, body: Any) -> str:
    if not isinstance(body, dict):
        raise E.invalid_request("body must be object")
    prefix = body.get("prefix")
    if prefix is None:
        prefix = ""
    if not isinstance(prefix, str):
        raise E.invalid_parameter("body/prefix must be string")
    if prefix and not prefix.endswith("/"):
        prefix += "/"  # a prefix is a folder, as Supabase reads it
    search = body.get("search") or ""
    if not isinstance(search, str):
        raise E.invalid_parameter("body/search must be string")
    limit = _int(body.get("limit"), "limit", 100, 0, 1000)
    offset = _int(body.get("offset"), "offset", 0)
    column, order = _sort(body)
    query = S.list_objects(column, "desc" if order == "desc" else "asc")
    try:
        async with ctx.tx(caller) as conn:
            out: str = await conn.fetchval(query, bucket_id, prefix, search, limit, offset)
    except asyncpg.PostgresError as e:
        raise _pg(e) from e
    return out


_BEYOND = "\U0010ffff"  # sorts after every valid key character, byte-wise


async def list_objects_v2(
    ctx: StorageContext, caller: Caller, bucket_id: str, body: Any
) -> dict[str, Any]:
    """`POST /object/list-v2/:bucket`: keys in name order after a cursor, folded into
    folders at '/' when `with_delimiter` is set."""
    if not isinstance(body, dict):
        raise E.invalid_request("body must be object")
    prefix = body.get("prefix") or ""
    if not isinstance(prefix, str):
        raise E.invalid_parameter("body/prefix must be string")
    limit = _int(body.get("limit"), "limit", 1000, 1, 1000)
    delimiter = bool(body.get("with_delimiter"))
    _, order = _sort(body)
    cursor = body.get("cursor") or None
    if cursor is not None and not isinstance(cursor, str):
        raise E.invalid_parameter("body/cursor must be string")
    query = S.list_objects_v2("desc" if order == "desc" else "asc")
    folders: list[dict[str, Any]] = []
    objects: list[dict[str, Any]] = []
    last: str | None = None
    has_next = False
    after = cursor
    try:
        async with ctx.tx(caller) as conn:
            while len(folders) + len(objects) <= limit:
                rows = await conn.fetch(query, bucket_id, prefix, after, limit + 1)
                if not rows:
                    break
                for r in rows:
                    if len(folders) + len(objects) == limit:
                        has_next = True
                        break
                    name: str = r["name"]
                    rest = name[len(prefix) :]
                    if delimiter and "/" in rest:
                        folder = prefix + rest.split("/", 1)[0] + "/"
                        folders.append({"key": folder, "name": folder})
                        last = folder
                        # Skip the rest of this folder's keys in one step.
                        after = folder + _BEYOND if order == "asc" else folder
                        break
                    objects.append({
                        "id": str(r["id"]), "key": name, "name": name,
                        "updated_at": _iso(r["updated_at"]), "created_at": _iso(r["created_at"]),
                        "last_accessed_at": _iso(r["last_accessed_at"]),
                        "metadata": _json(r["metadata"]),
                    })  # fmt: skip
                    last = after = name
                else:
                    if len(rows) <= limit:
                        break
                    continue
                if has_next:
                    break
    except asyncpg.PostgresError as e:
        raise _pg(e) from e
    out: dict[str, Any] = {"hasNext": has_next, "folders": folders, "objects": objects}
    if has_next and last is not None:
        out["nextCursor"] = last if not last.endswith("/") else last + _BEYOND
        out["nextCursorKey"] = last
    return out


def _iso(v: datetime | None) -> str | None:
    return v.isoformat() if v else None


# ------------------------------------------------------------------------------ move/copy


def _move_body(body: Any) -> tuple[str, str, str, str]:
    if not isinstance(body, dict):
        raise E.invalid_request("body must be object")
    for field in ("bucketId", "sourceKey", "destinationKey"):
        if not isinstance(body.get(field), str) or not body[field]:
            raise E.invalid_request(f"body must have required property '{field}'")
    dst_bucket = body.get("destinationBucket") or body["bucketId"]
    if not isinstance(dst_bucket, str):
        raise E.invalid_parameter("body/destinationBucket must be string")
    check_key(body["sourceKey"])
    check_key(body["destinationKey"])
    return body["bucketId"], body["sourceKey"], dst_bucket, body["destinationKey"]


async def move(ctx: StorageContext, caller: Caller, body: Any) -> dict[str, Any]:
    src_bucket, src, dst_bucket, dst = _move_body(body)
    owner = caller.owner
    try:
        async with ctx.tx(caller) as conn:
            status = await conn.execute(
                S.MOVE_OBJECT, src_bucket, src, dst_bucket, dst, _uuid(owner), owner
            )
    except asyncpg.PostgresError as e:
        raise _pg(e) from e
    if status.endswith(" 0"):
        raise E.no_such_key()
    return {"message": "Successfully moved"}


async def copy(
    ctx: StorageContext, caller: Caller, body: Any, headers: Mapping[str, str]
) -> dict[str, Any]:
    src_bucket, src, dst_bucket, dst = _move_body(body)
    upsert = headers.get("x-upsert", "").lower() == "true"
    source = await find_as_caller(ctx, caller, src_bucket, src)
    if not source.version:
        raise E.asset_missing()
    metadata = dict(source.metadata)
    override = body.get("metadata")
    if isinstance(override, dict):
        if isinstance(override.get("cacheControl"), str):
            metadata["cacheControl"] = override["cacheControl"]
        if isinstance(override.get("mimetype"), str):
            metadata["mimetype"] = override["mimetype"]
    user_metadata = source.user_metadata if body.get("copyMetadata", True) is not False else None
    if headers.get("x-metadata"):
        user_metadata = parse_user_metadata(headers["x-metadata"], b64=True)
    version = str(uuid.uuid4())
    try:
        await ctx.register_blob(version)
        stored = await ctx.backend.copy(source.version, version)
    except BlobMissing as e:
        await ctx.delete_blobs([version])
        raise E.asset_missing() from e
    # The copy's ETag as the backend answers it (S3's CopyObject); the same bytes have the
    # same MD5 otherwise.
    metadata.update(eTag=stored.etag or source.etag or "", lastModified=_now_iso())
    return await _commit_row(
        ctx, caller, dst_bucket, dst, version=version, metadata=metadata,
        user_metadata=user_metadata, upsert=upsert,
    )  # fmt: skip


# ------------------------------------------------------------------------------ remove


async def remove_many(ctx: StorageContext, caller: Caller, bucket_id: str, body: Any) -> str:
    if not isinstance(body, dict) or not isinstance(body.get("prefixes"), list):
        raise E.invalid_request("body must have required property 'prefixes'")
    names = body["prefixes"]
    if not names or len(names) > MAX_OBJECTS_PER_REQUEST:
        raise E.invalid_request("body/prefixes must have between 1 and 1000 items")
    if not all(isinstance(n, str) for n in names):
        raise E.invalid_parameter("body/prefixes must be array of strings")
    try:
        async with ctx.tx(caller) as conn:
            rows = await conn.fetch(S.DELETE_OBJECTS, bucket_id, names)
    except asyncpg.PostgresError as e:
        raise _pg(e) from e
    await ctx.delete_blobs([r["version"] for r in rows if r["version"]])
    return "[" + ",".join(r["row"] for r in rows) + "]"


async def remove_one(
    ctx: StorageContext, caller: Caller, bucket_id: str, name: str
) -> dict[str, Any]:
    await find_as_admin(ctx, bucket_id, name)  # NoSuchKey before AccessDenied, as Supabase
    try:
        async with ctx.tx(caller) as conn:
            row = await conn.fetchrow(S.DELETE_OBJECT, bucket_id, name)
    except asyncpg.PostgresError as e:
        raise _pg(e) from e
    if row is None:
        raise E.access_denied()
    if row["version"]:
        await ctx.delete_blobs([row["version"]])
    return {"message": "Successfully deleted"}


# ------------------------------------------------------------------------------ signing


async def sign_one(
    ctx: StorageContext, caller: Caller, bucket_id: str, name: str, body: Any,
    transform: Callable[[Any], dict[str, str]] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """`transform` turns the body's `transform` into token claims (image transformations);
    with any, the URL is a `/render/image/sign/` one, as Supabase signs it."""
    if not isinstance(body, dict) or "expiresIn" not in body:
        raise E.invalid_request("body must have required property 'expiresIn'")
    lifetime = signing.expires_in(body["expiresIn"])
    extra = transform(body.get("transform")) if transform is not None else {}
    await find_as_caller(ctx, caller, bucket_id, name)
    url = f"{bucket_id}/{name}"
    token = signing.sign(ctx.jwt_secret, url, signing.DOWNLOAD, lifetime, **extra)
    path = "/render/image/sign/" if extra else "/object/sign/"
    return {"signedURL": f"{path}{url}?token={token}"}


async def sign_many(
    ctx: StorageContext, caller: Caller, bucket_id: str, body: Any
) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or "expiresIn" not in body or "paths" not in body:
        raise E.invalid_request("body must have required properties 'expiresIn', 'paths'")
    lifetime = signing.expires_in(body["expiresIn"])
    paths = body["paths"]
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise E.invalid_parameter("body/paths must be array of strings")
    if not paths or len(paths) > MAX_OBJECTS_PER_REQUEST:
        raise E.invalid_request("body/paths must have between 1 and 1000 items")
    try:
        async with ctx.tx(caller) as conn:
            found = {r["name"] for r in await conn.fetch(S.FIND_NAMES, bucket_id, paths)}
    except asyncpg.PostgresError as e:
        raise _pg(e) from e
    out = []
    for path in paths:
        if path in found:
            url = f"{bucket_id}/{path}"
            token = signing.sign(ctx.jwt_secret, url, signing.DOWNLOAD, lifetime)
            out.append(
                {"error": None, "path": path, "signedURL": f"/object/sign/{url}?token={token}"}
            )
        else:
            out.append({
                "error": "Either the object does not exist or you do not have access to it",
                "path": path, "signedURL": None,
            })  # fmt: skip
    return out


async def sign_upload(
    ctx: StorageContext, caller: Caller, bucket_id: str, name: str, headers: Mapping[str, str]
) -> dict[str, Any]:
    check_key(name)
    await bucket_limits(ctx, bucket_id)
    upsert = headers.get("x-upsert", "").lower() == "true"
    await check_can_write(
        ctx, caller, bucket_id, name, upsert=upsert, metadata={}, user_metadata=None
    )
    url = f"{bucket_id}/{name}"
    token = signing.sign(
        ctx.jwt_secret, url, signing.UPLOAD, signing.UPLOAD_EXPIRES_IN,
        owner=caller.owner, upsert=upsert,
    )  # fmt: skip
    return {"url": f"/object/upload/sign/{url}?token={token}", "token": token}


async def upload_signed(
    ctx: StorageContext,
    bucket_id: str,
    name: str,
    token: str | None,
    headers: Mapping[str, str],
    stream: AsyncIterable[bytes],
) -> dict[str, Any]:
    """`PUT /object/upload/sign/…?token=`: the permission was checked when the URL was
    signed; the upload itself runs as the storage service, owned by whoever signed it."""
    if not token:
        raise E.invalid_request("querystring must have required property 'token'")
    caller, upsert = verify_upload_token(ctx, bucket_id, name, token)
    return await upload(ctx, caller, bucket_id, name, headers, stream, upsert=upsert, check=False)


def verify_upload_token(
    ctx: StorageContext, bucket_id: str, name: str, token: str
) -> tuple[Caller, bool]:
    """Who an upload to a signed upload URL runs as — the storage service, on behalf of the
    owner who signed it (RLS was checked then) — and whether it may overwrite, if `token`
    was signed for this object's upload (Supabase's errors otherwise).  Used by the signed
    PUT and by TUS uploads to `/upload/resumable/sign`."""
    claims = signing.verify(ctx.jwt_secret, token, f"{bucket_id}/{name}", signing.UPLOAD)
    owner = claims.get("owner") if isinstance(claims.get("owner"), str) else None
    return service_caller(owner), bool(claims.get("upsert"))
