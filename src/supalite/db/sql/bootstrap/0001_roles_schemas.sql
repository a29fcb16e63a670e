-- Roles, schemas, grants and the auth.* helpers as Supabase has them, so policies and
-- migrations written for Supabase run unchanged.  Idempotent: safe to run on a database that
-- already has some or all of it (a Supabase-shaped server reached by DATABASE_URL included).

do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'supabase_admin') then
    create role supabase_admin nologin;
  end if;
end
$$;

grant anon, authenticated, service_role to authenticator;

-- PostgREST's per-role limits as Supabase ships them.
alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
alter role authenticator set statement_timeout = '8s';

create schema if not exists extensions;
create schema if not exists auth;
create schema if not exists storage;
create schema if not exists realtime;
create schema if not exists graphql_public;
create schema if not exists supabase_migrations;

grant usage on schema public to anon, authenticated, service_role;
grant usage on schema extensions to anon, authenticated, service_role;
grant usage on schema graphql_public to anon, authenticated, service_role;
grant usage on schema auth to anon, authenticated, service_role;
grant usage on schema storage to anon, authenticated, service_role;
grant usage on schema realtime to anon, authenticated, service_role;

-- Tables, sequences and functions that the database owner creates in public are reachable by
-- the API roles, as on Supabase: exposure is then decided by RLS, not by forgotten grants.
do $$
declare
  owner_role text;
begin
  foreach owner_role in array array['postgres', 'supabase_admin', current_user] loop
    if exists (select 1 from pg_roles where rolname = owner_role) then
      execute format('alter default privileges for role %I in schema public '
                     'grant all on tables to anon, authenticated, service_role', owner_role);
      execute format('alter default privileges for role %I in schema public '
                     'grant all on sequences to anon, authenticated, service_role', owner_role);
      execute format('alter default privileges for role %I in schema public '
                     'grant all on functions to anon, authenticated, service_role', owner_role);
      execute format('alter default privileges for role %I in schema graphql_public '
                     'grant all on tables to anon, authenticated, service_role', owner_role);
      execute format('alter default privileges for role %I in schema extensions '
                     'grant all on functions to anon, authenticated, service_role', owner_role);
    end if;
  end loop;
end
$$;

-- Tables that already exist (e.g. DATABASE_URL pointed at a populated database).
grant all on all tables in schema public to anon, authenticated, service_role;
grant all on all sequences in schema public to anon, authenticated, service_role;
grant all on all functions in schema public to anon, authenticated, service_role;

-- Extensions Supabase preinstalls, where this server has them (the pgserver build has none of
-- the contrib ones; gen_random_uuid() is core since PostgreSQL 13).
do $$
declare
  ext text;
begin
  foreach ext in array array['pgcrypto', 'uuid-ossp', 'pg_trgm'] loop
    if exists (select 1 from pg_available_extensions where name = ext)
       and not exists (select 1 from pg_extension where extname = ext) then
      execute format('create extension %I with schema extensions', ext);
    end if;
  end loop;
end
$$;

-- The request's claims, read exactly as Supabase's auth migrations read them.
create or replace function auth.uid() returns uuid
language sql stable as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

create or replace function auth.role() returns text
language sql stable as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

create or replace function auth.email() returns text
language sql stable as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
  )::text
$$;

create or replace function auth.jwt() returns jsonb
language sql stable as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

comment on function auth.uid() is 'Deprecated. Use auth.jwt() -> ''sub'' instead.';
comment on function auth.role() is 'Deprecated. Use auth.jwt() -> ''role'' instead.';
comment on function auth.email() is 'Deprecated. Use auth.jwt() -> ''email'' instead.';

grant execute on function auth.uid(), auth.role(), auth.email(), auth.jwt()
  to anon, authenticated, service_role;

-- The Supabase CLI's migration history table.
create table if not exists supabase_migrations.schema_migrations (
  version text not null primary key
);
alter table supabase_migrations.schema_migrations add column if not exists statements text[];
alter table supabase_migrations.schema_migrations add column if not exists name text;

-- Tell the Data API to reload its schema cache after DDL, as Supabase's pgrst_ddl_watch does.
create or replace function extensions.pgrst_ddl_watch() returns event_trigger
language plpgsql as $$
begin
  perform pg_notify('pgrst', 'reload schema');
end
$$;

do $$
begin
  if not exists (select 1 from pg_event_trigger where evtname = 'pgrst_ddl_watch') then
    create event trigger pgrst_ddl_watch on ddl_command_end
      execute procedure extensions.pgrst_ddl_watch();
  end if;
  if not exists (select 1 from pg_event_trigger where evtname = 'pgrst_drop_watch') then
    create event trigger pgrst_drop_watch on sql_drop
      execute procedure extensions.pgrst_ddl_watch();
  end if;
exception when insufficient_privilege then
  -- Event triggers need a superuser; without one the cache still reloads on NOTIFY.
  raise notice 'supalite: no event triggers (not a superuser); schema reloads need NOTIFY pgrst';
end
$$;
