-- Deployed functions (`supalite functions deploy`, the admin API, the MCP deploy tool): each
-- function's files live here, so every supalite process sharing this database - the workers of
-- `--workers N`, or a fleet behind a load balancer - serves the same version.  Each process
-- writes a version's files out to its data folder once and runs workers on those.
--
-- In `_supalite`, which no API role reaches (not even service_role through the Data API): the
-- service_role-only admin API (`/admin/v1/functions`, `/admin/v1/secrets`) is the one way in,
-- so its checks on names, paths and sizes cannot be bypassed with a row written elsewhere.
create schema if not exists _supalite;

create table if not exists _supalite.functions (
  id uuid not null default gen_random_uuid() unique,
  slug text primary key check (slug ~ '^[A-Za-z][A-Za-z0-9_-]*$'),
  name text not null,
  version int not null default 1,       -- +1 on every deploy of the slug
  entrypoint text not null,             -- a key of `files`
  verify_jwt boolean not null default true,
  import_map_path text,
  files jsonb not null,                 -- {path relative to the function's folder: content}
  sha256 text not null,                 -- of the files, names and contents
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

-- `supalite secrets set`: AES-256-GCM ciphertexts (functions/secrets.py says where the key
-- comes from); the digest is what `secrets list` shows, as the Supabase CLI does.
create table if not exists _supalite.function_secrets (
  name text primary key check (name ~ '^[A-Za-z_][A-Za-z0-9_]*$'),
  value text not null,
  digest text not null,
  updated_at timestamptz not null default now()
);
