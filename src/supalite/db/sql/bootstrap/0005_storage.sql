-- The `storage` schema as Supabase Storage leaves it after its migrations, so the policies
-- written for Supabase run unchanged: `storage.objects` / `storage.buckets` with the same
-- columns, the path helpers `storage.foldername()`, `storage.filename()`,
-- `storage.extension()`, RLS on both tables with no policies (only what the user writes grants
-- anything; service_role bypasses RLS), and the grants Supabase gives the API roles.
-- Idempotent, like every bootstrap step.

create schema if not exists storage;
grant usage on schema storage to anon, authenticated, service_role;

create table if not exists storage.buckets (
  id text not null primary key,
  name text not null,
  owner uuid,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  public boolean default false,
  avif_autodetection boolean default false,
  file_size_limit bigint,
  allowed_mime_types text[],
  owner_id text
);
create unique index if not exists bname on storage.buckets using btree (name);
comment on column storage.buckets.owner is 'Field is deprecated, use owner_id instead';

do $$ begin
  create type storage.buckettype as enum ('STANDARD', 'ANALYTICS', 'VECTOR');
exception when duplicate_object then null; end $$;
alter table storage.buckets add column if not exists type storage.buckettype not null
  default 'STANDARD';

create table if not exists storage.objects (
  id uuid not null default gen_random_uuid() primary key,
  bucket_id text references storage.buckets (id),
  name text,
  owner uuid,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  last_accessed_at timestamptz default now(),
  metadata jsonb,
  path_tokens text[] generated always as (string_to_array(name, '/')) stored,
  version text,
  owner_id text,
  user_metadata jsonb,
  level int
);
create unique index if not exists bucketid_objname on storage.objects using btree (bucket_id, name);
create index if not exists name_prefix_search on storage.objects using btree (name text_pattern_ops);
create index if not exists idx_objects_bucket_id_name on storage.objects
  (bucket_id, name collate "C");
comment on column storage.objects.owner is 'Field is deprecated, use owner_id instead';

alter table storage.buckets enable row level security;
alter table storage.objects enable row level security;

-- updated_at follows every change, as Supabase's `update_updated_at_column` trigger does.
create or replace function storage.update_updated_at_column() returns trigger
language plpgsql as $$
begin
  new.updated_at = now();
  return new;
end
$$;
do $$ begin
  if not exists (select 1 from pg_trigger
                 where tgname = 'update_objects_updated_at'
                   and tgrelid = 'storage.objects'::regclass) then
    create trigger update_objects_updated_at before update on storage.objects
      for each row execute function storage.update_updated_at_column();
  end if;
end $$;

-- Path helpers, with Supabase's signatures and results: foldername('a/b/c.png') = {a,b},
-- filename(...) = 'c.png', extension(...) = 'png'.
create or replace function storage.foldername(name text) returns text[]
language plpgsql immutable as $$
declare
  _parts text[];
begin
  select string_to_array(name, '/') into _parts;
  return _parts[1:array_length(_parts, 1) - 1];
end
$$;

create or replace function storage.filename(name text) returns text
language plpgsql immutable as $$
declare
  _parts text[];
begin
  select string_to_array(name, '/') into _parts;
  return _parts[array_length(_parts, 1)];
end
$$;

create or replace function storage.extension(name text) returns text
language plpgsql immutable as $$
declare
  _parts text[];
  _filename text;
begin
  select string_to_array(name, '/') into _parts;
  select _parts[array_length(_parts, 1)] into _filename;
  return reverse(split_part(reverse(_filename), '.', 1));
end
$$;

grant all on storage.buckets, storage.objects to anon, authenticated, service_role;
grant execute on function storage.foldername(text), storage.filename(text),
  storage.extension(text) to anon, authenticated, service_role;

-- Tables, functions and sequences the owner adds to `storage` later are reachable by the API
-- roles too, as Supabase's default privileges on the schema make them.
do $$
declare
  owner_role text;
begin
  foreach owner_role in array array['postgres', 'supabase_admin', current_user] loop
    if exists (select 1 from pg_roles where rolname = owner_role) then
      execute format('alter default privileges for role %I in schema storage '
                     'grant all on tables to anon, authenticated, service_role', owner_role);
      execute format('alter default privileges for role %I in schema storage '
                     'grant all on functions to anon, authenticated, service_role', owner_role);
      execute format('alter default privileges for role %I in schema storage '
                     'grant all on sequences to anon, authenticated, service_role', owner_role);
    end if;
  end loop;
end
$$;

-- supalite's own registry of stored blobs (one row per version written to the backend), so a
-- blob whose metadata row never committed (a crash between the bytes and the row) or whose row
-- was deleted behind Storage's back is found and removed, whatever the backend.
create schema if not exists _supalite;
create table if not exists _supalite.storage_blobs (
  version text primary key,
  created_at timestamptz not null default now()
);
create index if not exists storage_blobs_created_at on _supalite.storage_blobs (created_at);
create index if not exists objects_version on storage.objects (version);
