-- TUS resumable uploads (`/storage/v1/upload/resumable`): one row per unfinished (or recently
-- finished) upload, so every supalite process sharing this database and the data folder can
-- serve any request of an upload, and a restarted process resumes it.  The row's offset is the
-- truth: bytes of the staging file past it (a crash mid-PATCH) are cut off by the next PATCH.
create schema if not exists _supalite;
create table if not exists _supalite.storage_tus_uploads (
  id text primary key,                  -- bucket/name/version: the upload URL's id, decoded
  bucket_id text not null,
  name text not null,
  version text not null unique,         -- the blob's key once stored, and the staging file's name
  upload_length bigint not null check (upload_length >= 0),
  upload_offset bigint not null default 0 check (upload_offset >= 0),
  upload_metadata text,                 -- the Upload-Metadata header as created (HEAD echoes it)
  mimetype text not null,
  cache_control text not null,
  user_metadata jsonb,
  upsert boolean not null default false,
  role text not null,                   -- who created it: only they may continue it
  owner_id text,
  done boolean not null default false,  -- the object is stored; kept until expiry for HEAD
  lease text,                           -- the request appending now (one at a time)
  lease_until timestamptz,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null
);
create index if not exists storage_tus_uploads_expires_at
  on _supalite.storage_tus_uploads (expires_at);
