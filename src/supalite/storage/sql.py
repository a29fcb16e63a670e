"""Every SQL statement Storage runs.  Values are bind parameters; the only text spliced in is
a sort column and direction, each chosen from a fixed list here.

Statements run either in the caller's transaction (role + `request.jwt.claims` set, so RLS on
`storage.buckets` / `storage.objects` decides, as on Supabase) or, where Supabase itself acts
as the storage superuser (public and signed downloads, bucket limits, config buckets), on the
admin pool.  Caller-role writes carry no RETURNING unless Supabase's policy requirements for
that operation include `select`, since RETURNING makes Postgres check SELECT policies too.
"""

from __future__ import annotations

from typing import Literal

SortOrder = Literal["asc", "desc"]

BUCKET_JSON = """json_build_object(
  'id', b.id, 'name', b.name, 'owner', coalesce(b.owner::text, ''), 'owner_id', b.owner_id,
  'public', coalesce(b.public, false), 'type', b.type, 'file_size_limit', b.file_size_limit,
  'allowed_mime_types', b.allowed_mime_types, 'created_at', b.created_at,
  'updated_at', b.updated_at)"""

_BUCKET_SORT = {"id": "b.id", "name": "b.name", "created_at": "b.created_at",
                "updated_at": "b.updated_at"}  # fmt: skip


def list_buckets(sort_column: str, order: SortOrder) -> str:
    col = _BUCKET_SORT.get(sort_column, "b.name")
    direction = "desc" if order == "desc" else "asc"
    return f"""
select coalesce(json_agg({BUCKET_JSON} order by {col} {direction}, b.id), '[]')::text
from (select * from storage.buckets b
      where $1::text is null or strpos(lower(b.name), lower($1)) > 0
      order by {col} {direction}, b.id
      limit $2 offset $3) b"""


GET_BUCKET = f"select {BUCKET_JSON}::text from storage.buckets b where b.id = $1"

# Limits and visibility of a bucket, read as the storage superuser (as Supabase does on upload
# and on public/signed reads: users need no policy on storage.buckets to use a bucket).
BUCKET_LIMITS = """
select id, coalesce(public, false) as public, file_size_limit, allowed_mime_types
from storage.buckets where id = $1"""

# The same, and the upload's blob version noted in the registry (`REGISTER_BLOB`) if the
# bucket exists: one round trip for both.
BUCKET_LIMITS_REGISTER = """
with bucket as (
  select id, coalesce(public, false) as public, file_size_limit, allowed_mime_types
  from storage.buckets where id = $1),
registered as (
  insert into _supalite.storage_blobs (version) select $2 from bucket on conflict do nothing)
select * from bucket"""

CREATE_BUCKET = """
insert into storage.buckets (id, name, owner, owner_id, public, file_size_limit,
                             allowed_mime_types)
values ($1, $2, $3, $4, $5, $6, $7)"""

# $2/$4/$6: whether the request set public / file_size_limit / allowed_mime_types at all.
UPDATE_BUCKET = """
update storage.buckets set
  public = case when $2 then $3 else public end,
  file_size_limit = case when $4 then $5 else file_size_limit end,
  allowed_mime_types = case when $6 then $7::text[] else allowed_mime_types end,
  updated_at = now()
where id = $1"""

DELETE_BUCKET = "delete from storage.buckets where id = $1"

BUCKET_HAS_OBJECTS = "select exists (select 1 from storage.objects where bucket_id = $1)"

EMPTY_BUCKET = "delete from storage.objects where bucket_id = $1 returning version"

# Config buckets (config.toml / JSON config): created or brought in line at start, as
# `supabase seed buckets` does.
SEED_BUCKET = """
insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
values ($1, $1, $2, $3, $4)
on conflict (id) do update set public = excluded.public,
  file_size_limit = excluded.file_size_limit,
  allowed_mime_types = excluded.allowed_mime_types, updated_at = now()"""

# ------------------------------------------------------------------------------ objects

FIND_OBJECT = """
select id, name, bucket_id, version, metadata, user_metadata, created_at, updated_at,
       last_accessed_at, owner_id
from storage.objects where bucket_id = $1 and name = $2"""

FIND_NAMES = "select name from storage.objects where bucket_id = $1 and name = any($2::text[])"

# Writers of one object queue here (also when the row does not exist yet), so each upsert
# knows exactly which version it replaces and can remove that version's bytes after commit.
LOCK_NAME = "select pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0))"

# The row an upsert will replace, locked so the bytes it names can be removed after commit.
LOCK_CURRENT = """
select id, version from storage.objects where bucket_id = $1 and name = $2 for update"""

INSERT_OBJECT = """
insert into storage.objects (id, bucket_id, name, owner, owner_id, metadata, user_metadata,
                             version)
values ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8)"""

# `last_accessed_at` keeps its creation time: Supabase Storage sets it only when a row is
# inserted (the column's default), never on a read, an upsert or a move.
UPSERT_OBJECT = (
    INSERT_OBJECT
    + """
on conflict (bucket_id, name) do update set
  owner = excluded.owner, owner_id = excluded.owner_id, metadata = excluded.metadata,
  user_metadata = excluded.user_metadata, version = excluded.version"""
)

MOVE_OBJECT = """
update storage.objects set bucket_id = $3, name = $4, owner = $5, owner_id = $6
where bucket_id = $1 and name = $2"""

DELETE_OBJECT = "delete from storage.objects where bucket_id = $1 and name = $2 returning version"

OBJECT_JSON = """json_build_object(
  'name', o.name, 'bucket_id', o.bucket_id, 'owner', coalesce(o.owner::text, ''),
  'owner_id', o.owner_id, 'version', o.version, 'id', o.id, 'updated_at', o.updated_at,
  'created_at', o.created_at, 'last_accessed_at', o.last_accessed_at,
  'metadata', o.metadata, 'user_metadata', o.user_metadata)"""

DELETE_OBJECTS = f"""
delete from storage.objects o where o.bucket_id = $1 and o.name = any($2::text[])
returning o.version, {OBJECT_JSON}::text as row"""

_LIST_SORT = {"name", "updated_at", "created_at", "last_accessed_at"}


def list_objects(sort_column: str, order: SortOrder) -> str:
    """One folder level of a bucket, as Supabase's `storage.search()` shows it: the entries
    directly under `$2` (a prefix ending in '/', or ''), sub-folders as rows with null id,
    filtered by `$3` (entries whose name starts with it, case-insensitively).  Name order
    interleaves folders and files; other orders list the folders first."""
    col = sort_column if sort_column in _LIST_SORT else "name"
    d = "desc" if order == "desc" else "asc"
    if col == "name":
        order_by = f'lower(e.name) collate "C" {d}, e.name collate "C" {d}'
    else:
        order_by = (
            f'e.is_folder desc, (case when e.is_folder then e.name end) collate "C" {d}, '
            f'e.{col} {d} nulls last, e.name collate "C"'
        )
    return f"""
with matched as (
  select o.id, o.updated_at, o.created_at, o.last_accessed_at, o.metadata,
         substr(o.name, length($2) + 1) as rest
  from storage.objects o
  where o.bucket_id = $1 and starts_with(lower(o.name), lower($2))
), entries as (
  select split_part(m.rest, '/', 1) as name, null::uuid as id, null::timestamptz as updated_at,
         null::timestamptz as created_at, null::timestamptz as last_accessed_at,
         null::jsonb as metadata, true as is_folder
  from matched m where strpos(m.rest, '/') > 0
  group by split_part(m.rest, '/', 1)
  union all
  select m.rest, m.id, m.updated_at, m.created_at, m.last_accessed_at, m.metadata, false
  from matched m where strpos(m.rest, '/') = 0 and m.rest <> ''
), page as (
  select * from entries e
  where starts_with(lower(e.name), lower($3))
  order by {order_by}
  limit $4 offset $5
)
select coalesce(json_agg(json_build_object(
  'name', e.name, 'id', e.id, 'updated_at', e.updated_at, 'created_at', e.created_at,
  'last_accessed_at', e.last_accessed_at, 'metadata', e.metadata) order by {order_by}),
  '[]')::text
from page e"""


def list_objects_v2(order: SortOrder) -> str:
    """Flat keys after a cursor (`$3`, exclusive), in name order, `$4` rows; the caller folds
    them into folders when a delimiter is asked for."""
    d = "desc" if order == "desc" else "asc"
    cmp = "<" if order == "desc" else ">"
    return f"""
select o.id, o.name, o.bucket_id, o.updated_at, o.created_at, o.last_accessed_at,
       o.metadata, o.user_metadata, o.version
from storage.objects o
where o.bucket_id = $1 and starts_with(o.name, $2)
  and ($3::text is null or o.name collate "C" {cmp} $3 collate "C")
order by o.name collate "C" {d}
limit $4"""


# ------------------------------------------------------------------------------ blob registry

REGISTER_BLOB = "insert into _supalite.storage_blobs (version) values ($1) on conflict do nothing"

FORGET_BLOBS = "delete from _supalite.storage_blobs where version = any($1::text[])"

# Blobs older than the grace period that no object names: left by a crash between bytes and
# row, or by rows deleted with plain SQL.
ORPHAN_BLOBS = """
select b.version from _supalite.storage_blobs b
where b.created_at < now() - make_interval(secs => $1)
  and not exists (select 1 from storage.objects o where o.version = b.version)
limit $2"""

# ------------------------------------------------------------------------------ TUS uploads
# Resumable uploads (`tus.py`).  One request at a time appends to an upload: it holds a lease
# (a token and a deadline, renewed while it streams) instead of a lock, so no database
# connection is held while bytes arrive, and a lease a crashed process held simply runs out.

TUS_COLUMNS = """id, bucket_id, name, version, upload_length, upload_offset, upload_metadata,
  mimetype, cache_control, user_metadata, upsert, role, owner_id, done, lease,
  lease_until > now() as leased, expires_at, expires_at <= now() as expired"""

# $13: the creating request's lease (it may carry the first bytes), $14 its seconds, $15 the
# upload's lifetime in seconds.
TUS_CREATE = f"""
insert into _supalite.storage_tus_uploads (id, bucket_id, name, version, upload_length,
  upload_metadata, mimetype, cache_control, user_metadata, upsert, role, owner_id, lease,
  lease_until, expires_at)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, $13,
        now() + make_interval(secs => $14), now() + make_interval(secs => $15))
returning {TUS_COLUMNS}"""

TUS_GET = f"select {TUS_COLUMNS} from _supalite.storage_tus_uploads where id = $1"

TUS_CLAIM = f"""
update _supalite.storage_tus_uploads
set lease = $2, lease_until = now() + make_interval(secs => $3)
where id = $1 and (lease is null or lease_until <= now())
returning {TUS_COLUMNS}"""

TUS_RENEW = """
update _supalite.storage_tus_uploads set lease_until = now() + make_interval(secs => $3)
where id = $1 and lease = $2"""

TUS_RELEASE = """
update _supalite.storage_tus_uploads
set upload_offset = $3, done = $4, lease = null, lease_until = null
where id = $1 and lease = $2"""

TUS_DELETE = "delete from _supalite.storage_tus_uploads where id = $1 and lease = $2"

# creation-defer-length: the length a PATCH declares, once (the request holds the lease).
TUS_DECLARE_LENGTH = """
update _supalite.storage_tus_uploads set upload_length = $3
where id = $1 and lease = $2 and upload_length is null"""

# Expired uploads no live request is appending to; their staging files go with them.
TUS_EXPIRED = """
delete from _supalite.storage_tus_uploads where id in (
  select id from _supalite.storage_tus_uploads
  where expires_at <= now() and (lease is null or lease_until <= now())
  limit $1 for update skip locked)
returning version"""
