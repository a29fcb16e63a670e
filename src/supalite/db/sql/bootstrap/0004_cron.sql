-- pg_cron, so that migrations written for Supabase (`select cron.schedule(...)`) run unchanged.
--
-- Where the real extension exists (installed already, or available and preloaded for this
-- database) it is used and nothing of supalite's is created.  Otherwise this creates the
-- `cron` schema with pg_cron's own tables, policies and functions, in SQL, and supalite's
-- scheduler (supalite/cron/) runs the jobs; the schema's comment marks it as the emulation.
--
-- Who may schedule: as with pg_cron, nobody but the owner (the role supalite bootstraps as,
-- which also runs migrations) and superusers, plus `postgres` and `supabase_admin` as Supabase
-- grants them.  The functions run with the caller's rights and pg_cron's row-level policies
-- (a role sees and changes only its own jobs), so granting another role
--   grant usage on schema cron to r;
--   grant select, insert, update, delete on cron.job to r;
--   grant usage on sequence cron.jobid_seq to r;
-- lets it schedule jobs that run as itself.  See docs/cron.md for what that trusts it with.
--
-- Migrations written for pg_cron also say `create extension if not exists pg_cron` and
-- `comment on extension pg_cron`.  So that those run unchanged too, the emulation registers
-- itself in pg_extension as `pg_cron` with version 'supalite' (a catalog row only: no control
-- file, no library; `if not exists` then skips).  This needs a superuser, as the embedded
-- server's owner is; elsewhere the row is left out and a notice says so.
--
-- Idempotent: every statement may run again on a database that already has it.

do $setup$
declare
  preload text := replace(coalesce(current_setting('shared_preload_libraries', true), ''), ' ', '');
begin
  if exists (select 1 from pg_extension where extname = 'pg_cron' and extversion <> 'supalite') then
    return;
  end if;
  if exists (select 1 from pg_available_extensions where name = 'pg_cron')
     and 'pg_cron' = any (string_to_array(preload, ','))
     and coalesce(current_setting('cron.database_name', true), 'postgres') = current_database()
     and not exists (select 1 from pg_namespace where nspname = 'cron') then
    create extension if not exists pg_cron;
    return;
  end if;
  if exists (select 1 from pg_namespace where nspname = 'cron')
     and coalesce(obj_description((select oid from pg_namespace where nspname = 'cron'),
                                  'pg_namespace'), '') not like 'supalite:%' then
    -- Someone else's `cron` schema: leave it alone (supalite's scheduler will not run).
    raise notice 'supalite: schema cron exists and is not pg_cron; cron emulation skipped';
    return;
  end if;

  if not exists (select 1 from pg_extension where extname = 'pg_cron') then
    execute 'create schema if not exists cron';
    if (select rolsuper from pg_roles where rolname = current_user) then
      insert into pg_extension
        (oid, extname, extowner, extnamespace, extrelocatable, extversion, extconfig, extcondition)
      -- In pg_catalog, as Supabase creates pg_cron: a dump then says what it would say there.
      select (select max(oid::int8) + 1 from pg_extension)::oid, 'pg_cron',
             (select oid from pg_roles where rolname = current_user),
             'pg_catalog'::regnamespace, false, 'supalite', null, null;
      -- It goes with the emulation: `drop schema cron cascade` removes it too.
      insert into pg_depend (classid, objid, objsubid, refclassid, refobjid, refobjsubid, deptype)
      select 'pg_extension'::regclass, e.oid, 0, 'pg_namespace'::regclass, n.oid, 0, 'n'
        from pg_extension e, pg_namespace n where e.extname = 'pg_cron' and n.nspname = 'cron';
    else
      raise notice 'supalite: not a superuser; `create extension pg_cron` will fail here';
    end if;
  end if;

  execute $emulation$

create schema if not exists cron;
comment on schema cron is 'supalite: pg_cron emulation, jobs run by supalite''s scheduler';
revoke all on schema cron from public;

create sequence if not exists cron.jobid_seq;
create sequence if not exists cron.runid_seq;

create table if not exists cron.job (
  jobid bigint primary key default nextval('cron.jobid_seq'),
  schedule text not null,
  command text not null,
  nodename text not null default 'localhost',
  nodeport int not null default coalesce(inet_server_port(), current_setting('port')::int),
  database text not null default current_database(),
  username text not null default current_user,
  active boolean not null default true,
  jobname text,
  constraint jobname_username_uniq unique (jobname, username)
);
alter sequence cron.jobid_seq owned by cron.job.jobid;

create table if not exists cron.job_run_details (
  jobid bigint,
  runid bigint primary key default nextval('cron.runid_seq'),
  job_pid integer,
  database text,
  username text,
  command text,
  status text,
  return_message text,
  start_time timestamptz,
  end_time timestamptz
);
alter sequence cron.runid_seq owned by cron.job_run_details.runid;

-- pg_cron's grants and policies: everyone may read (and delete) rows, RLS shows each role its own.
grant select on cron.job to public;
grant select, delete on cron.job_run_details to public;
grant select on sequence cron.jobid_seq, cron.runid_seq to public;
alter table cron.job enable row level security;
alter table cron.job_run_details enable row level security;
drop policy if exists cron_job_policy on cron.job;
create policy cron_job_policy on cron.job using (username = current_user);
drop policy if exists cron_job_run_details_policy on cron.job_run_details;
create policy cron_job_run_details_policy on cron.job_run_details using (username = current_user);

-- Wake the schedulers when jobs change (pg_cron invalidates its job cache the same way).
create or replace function cron.job_cache_invalidate() returns trigger
language plpgsql as $fn$
begin
  perform pg_notify('supalite_cron', '');
  return null;
end
$fn$;
drop trigger if exists cron_job_cache_invalidate on cron.job;
create trigger cron_job_cache_invalidate
  after insert or update or delete or truncate on cron.job
  for each statement execute function cron.job_cache_invalidate();

-- The schedule grammar, as pg_cron's parser (Vixie cron's) reads it; supalite/cron/schedule.py
-- reads the same grammar and the tests check that both agree.  Characters are read one by one:
-- after the last one comes 'NUL' once (pg_cron's buffer yields a NUL), then '' (end of input).
create or replace function cron._valid_schedule(schedule text) returns boolean
language plpgsql immutable strict
set search_path = pg_catalog
as $fn$
declare
  s text := schedule;
  n int := length(schedule);
  pos int := 1;
  ch text;
  field int;
  lo int;
  hi int;
  names text[];
  tok text;
  num1 numeric;
  num2 numeric;
  step numeric;
  single boolean;
  word text;
  m text[];
  v numeric;
begin
  <<cron_form>>
  begin
    exit cron_form when n >= 1000;
    -- Blank lines and '#' comment lines before the schedule are skipped.
    loop
      ch := case when pos <= n then substr(s, pos, 1) when pos = n + 1 then 'NUL' else '' end;
      pos := pos + 1;
      exit when ch = '';
      while ch in (' ', E'\t') loop
        ch := case when pos <= n then substr(s, pos, 1) when pos = n + 1 then 'NUL' else '' end;
        pos := pos + 1;
      end loop;
      exit when ch = '';
      if ch not in (E'\n', '#') then
        pos := pos - 1;
        exit;
      end if;
      while ch not in (E'\n', '') loop
        ch := case when pos <= n then substr(s, pos, 1) when pos = n + 1 then 'NUL' else '' end;
        pos := pos + 1;
      end loop;
      exit when ch = '';
    end loop;
    ch := case when pos <= n then substr(s, pos, 1) when pos = n + 1 then 'NUL' else '' end;
    pos := pos + 1;
    exit cron_form when ch = '';

    if ch = '@' then
      word := '';
      loop
        ch := case when pos <= n then substr(s, pos, 1) when pos = n + 1 then 'NUL' else '' end;
        pos := pos + 1;
        exit when ch in ('', ' ', E'\t', E'\n', 'NUL');
        word := word || ch;
      end loop;
      return word in ('reboot', 'restart', 'yearly', 'annually', 'monthly', 'weekly', 'daily',
                      'midnight', 'hourly');
    end if;

    for field in 1..5 loop
      lo := (array[0, 0, 1, 1, 0])[field];
      hi := (array[59, 23, 31, 12, 7])[field];
      names := case field
        when 4 then array['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct',
                          'nov', 'dec']
        when 5 then array['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']
      end;
      if field = 3 and ch = '$' then  -- the last day of the month
        ch := case when pos <= n then substr(s, pos, 1) when pos = n + 1 then 'NUL' else '' end;
        pos := pos + 1;
        exit cron_form when ch not in (' ', E'\t');
        while ch in (' ', E'\t') loop
          ch := case when pos <= n then substr(s, pos, 1) when pos = n + 1 then 'NUL' else '' end;
          pos := pos + 1;
        end loop;
        continue;
      end if;
      loop  -- a list of ranges: * | n | n-m, each of the last two with an optional /step
        single := false;
        if ch = '*' then
          num1 := lo;
          num2 := hi;
          ch := case when pos <= n then substr(s, pos, 1) when pos = n + 1 then 'NUL' else '' end;
          pos := pos + 1;
          exit cron_form when ch = '';
        else
          tok := '';
          while ch ~ '^[A-Za-z0-9]$' loop
            tok := tok || ch;
            ch := case when pos <= n then substr(s, pos, 1) when pos = n + 1 then 'NUL' else '' end;
            pos := pos + 1;
          end loop;
          if names is not null and lower(tok) = any (names) then
            num1 := array_position(names, lower(tok)) - 1 + lo;
          elsif tok ~ '^[0-9]+$' then  -- C's atoi: saturate at 64 bits, keep the low 32
            num1 := mod(least(tok::numeric, 9223372036854775807) + 2147483648, 4294967296)
                    - 2147483648;
          else
            exit cron_form;
          end if;
          if ch <> '-' then
            exit cron_form when ch = '/' or num1 < lo or num1 > hi;
            single := true;
          else
            ch := case when pos <= n then substr(s, pos, 1) when pos = n + 1 then 'NUL' else '' end;
            pos := pos + 1;
            tok := '';
            while ch ~ '^[A-Za-z0-9]$' loop
              tok := tok || ch;
              ch := case when pos <= n then substr(s, pos, 1) when pos = n + 1 then 'NUL' else '' end;
              pos := pos + 1;
            end loop;
            if names is not null and lower(tok) = any (names) then
              num2 := array_position(names, lower(tok)) - 1 + lo;
            elsif tok ~ '^[0-9]+$' then
              num2 := mod(least(tok::numeric, 9223372036854775807) + 2147483648, 4294967296)
                      - 2147483648;
            else
              exit cron_form;
            end if;
          end if;
        end if;
        if not single then
          step := 1;
          if ch = '/' then
            ch := case when pos <= n then substr(s, pos, 1) when pos = n + 1 then 'NUL' else '' end;
            pos := pos + 1;
            tok := '';
            while ch ~ '^[A-Za-z0-9]$' loop
              tok := tok || ch;
              ch := case when pos <= n then substr(s, pos, 1) when pos = n + 1 then 'NUL' else '' end;
              pos := pos + 1;
            end loop;
            exit cron_form when tok !~ '^[0-9]+$';
            step := mod(least(tok::numeric, 9223372036854775807) + 2147483648, 4294967296)
                    - 2147483648;
          end if;
          exit cron_form when num1 < lo or num1 > hi or num2 < lo or num2 > hi
                              or step <= 0 or step > hi;
        end if;
        exit when ch <> ',';
        ch := case when pos <= n then substr(s, pos, 1) when pos = n + 1 then 'NUL' else '' end;
        pos := pos + 1;
      end loop;
      -- Whatever follows a field up to the next blank is ignored, then the blanks.
      while ch not in (E'\t', ' ', E'\n', '', 'NUL') loop
        ch := case when pos <= n then substr(s, pos, 1) when pos = n + 1 then 'NUL' else '' end;
        pos := pos + 1;
      end loop;
      while ch in (' ', E'\t') loop
        ch := case when pos <= n then substr(s, pos, 1) when pos = n + 1 then 'NUL' else '' end;
        pos := pos + 1;
      end loop;
    end loop;
    return true;
  end;

  -- Not a cron schedule: '<n> second' or '<n> seconds', 0 < n < 60, as pg_cron's sscanf
  -- reads it (a sign, strtoul's wrap-around, then 32 bits).
  m := regexp_match(translate(s, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'),
                    '^[ \t\n\r\f\v]*([+-]?)([0-9]+)[ \t\n\r\f\v]*second(s[ \t\n\r\f\v]*)?$');
  if m is null then
    return false;
  end if;
  v := least(m[2]::numeric, 18446744073709551615);
  if m[1] = '-' and v <> 0 then
    v := 18446744073709551616 - v;
  end if;
  v := mod(v, 4294967296);
  return v > 0 and v < 60;
end
$fn$;

create or replace function cron._check_job_target(database text, username text)
returns void
language plpgsql stable
set search_path = pg_catalog
as $fn$
begin
  if not exists (select 1 from pg_database d where d.datname = database) then
    raise exception 'database "%" does not exist', database using errcode = '3D000';
  end if;
  if not has_database_privilege(username, database, 'CONNECT') then
    raise exception 'User % does not have CONNECT privilege on %', username, database;
  end if;
end
$fn$;

create or replace function cron._check_login_role(username text) returns void
language plpgsql stable
set search_path = pg_catalog
as $fn$
begin
  if not exists (select 1 from pg_roles r where r.rolname = username) then
    raise exception 'role "%" does not exist', username;
  end if;
  if not (select r.rolcanlogin from pg_roles r where r.rolname = username) then
    raise exception 'role "%" can not log in', username
      using detail = 'Jobs may only be run by roles that have the LOGIN attribute.';
  end if;
end
$fn$;

-- pg_cron's ScheduleCronJob: validate, then insert (a named job of the same user is updated).
create or replace function cron._schedule(
  job_name text, schedule text, command text, database text, username text, active boolean
) returns bigint
language plpgsql
set search_path = pg_catalog
as $fn$
declare
  job_user text := coalesce(username, current_user::text);
  job_db text := coalesce(database, current_database()::text);
  id bigint;
begin
  if not cron._valid_schedule(schedule) then
    raise exception 'invalid schedule: %', schedule
      using errcode = '22023',
            hint = 'Use cron format (e.g. 5 4 * * *), or interval format ''[1-59] seconds''';
  end if;
  if username is not null then
    if not (select r.rolsuper from pg_roles r where r.rolname = current_user) then
      raise exception 'must be superuser to create a job for another role';
    end if;
    perform cron._check_login_role(username);
  end if;
  perform cron._check_job_target(job_db, job_user);
  if job_name is null then
    insert into cron.job as j (schedule, command, nodename, nodeport, database, username, active)
    values (schedule, command, 'localhost', current_setting('port')::int, job_db, job_user,
            active)
    returning j.jobid into id;
  else
    insert into cron.job as j
      (schedule, command, nodename, nodeport, database, username, active, jobname)
    values (schedule, command, 'localhost', current_setting('port')::int, job_db, job_user,
            active, job_name)
    on conflict on constraint jobname_username_uniq do update
      set schedule = excluded.schedule, command = excluded.command,
          database = excluded.database
    returning j.jobid into id;
  end if;
  return id;
end
$fn$;

create or replace function cron.schedule(schedule text, command text) returns bigint
language sql strict
set search_path = pg_catalog
as $fn$ select cron._schedule(null, schedule, command, null, null, true) $fn$;
comment on function cron.schedule(text, text) is 'schedule a pg_cron job';

create or replace function cron.schedule(job_name text, schedule text, command text)
returns bigint
language plpgsql
set search_path = pg_catalog
as $fn$
begin
  if job_name is null then
    raise exception 'job_name can not be NULL';
  elsif schedule is null then
    raise exception 'schedule can not be NULL';
  elsif command is null then
    raise exception 'command can not be NULL';
  end if;
  return cron._schedule(job_name, schedule, command, null, null, true);
end
$fn$;
comment on function cron.schedule(text, text, text) is 'schedule a pg_cron job';

create or replace function cron.schedule_in_database(
  job_name text, schedule text, command text, database text,
  username text default null, active boolean default true
) returns bigint
language plpgsql
set search_path = pg_catalog
as $fn$
begin
  if job_name is null then
    raise exception 'job_name can not be NULL';
  elsif schedule is null then
    raise exception 'schedule can not be NULL';
  elsif command is null then
    raise exception 'command can not be NULL';
  end if;
  return cron._schedule(job_name, schedule, command, database, username,
                        coalesce(active, true));
end
$fn$;
comment on function cron.schedule_in_database(text, text, text, text, text, boolean)
  is 'schedule a pg_cron job';

create or replace function cron.unschedule(job_id bigint) returns boolean
language plpgsql strict
set search_path = pg_catalog
as $fn$
begin
  delete from cron.job j where j.jobid = job_id;
  if not found then
    raise exception 'could not find valid entry for job %', job_id;
  end if;
  return true;
end
$fn$;
comment on function cron.unschedule(bigint) is 'unschedule a pg_cron job';

create or replace function cron.unschedule(job_name text) returns boolean
language plpgsql strict
set search_path = pg_catalog
as $fn$
begin
  delete from cron.job j where j.jobname = job_name and j.username = current_user;
  if not found then
    raise exception 'could not find valid entry for job ''%''', job_name;
  end if;
  return true;
end
$fn$;
comment on function cron.unschedule(text) is 'unschedule a pg_cron job';

create or replace function cron.alter_job(
  job_id bigint, schedule text default null, command text default null,
  database text default null, username text default null, active boolean default null
) returns void
language plpgsql
set search_path = pg_catalog
as $fn$
declare
  is_super boolean := (select r.rolsuper from pg_roles r where r.rolname = current_user);
begin
  if job_id is null then
    raise exception 'job_id can not be NULL';
  end if;
  if username is not null then
    if not is_super then
      raise exception 'must be superuser to alter username';
    end if;
    perform cron._check_login_role(username);
  end if;
  if database is not null then
    perform cron._check_job_target(database, coalesce(username, current_user::text));
  end if;
  if schedule is not null and not cron._valid_schedule(schedule) then
    raise exception 'invalid schedule: %', schedule
      using errcode = '22023',
            hint = 'Use cron format (e.g. 5 4 * * *), or interval format ''[1-59] seconds''';
  end if;
  if num_nonnulls(schedule, command, database, username, active) = 0 then
    raise exception 'no updates specified'
      using hint = 'You must specify at least one job attribute to change when calling alter_job';
  end if;
  update cron.job j
     set schedule = coalesce(alter_job.schedule, j.schedule),
         command = coalesce(alter_job.command, j.command),
         database = coalesce(alter_job.database, j.database),
         username = coalesce(alter_job.username, j.username),
         active = coalesce(alter_job.active, j.active)
   where j.jobid = job_id and (is_super or j.username = current_user);
  if not found then
    raise exception 'Job % does not exist or you don''t own it', job_id;
  end if;
end
$fn$;
comment on function cron.alter_job(bigint, text, text, text, text, boolean)
  is 'Alter the job identified by job_id. Any option left as NULL will not be modified.';

-- As pg_cron: these two are for whoever an administrator grants them to.
revoke all on function cron.alter_job(bigint, text, text, text, text, boolean) from public;
revoke all on function cron.schedule_in_database(text, text, text, text, text, boolean)
  from public;

-- Which process runs which (job, scheduled time): the first to insert the row.
create table if not exists _supalite.cron_claims (
  jobid bigint not null,
  scheduled_at timestamptz not null,
  claimed_at timestamptz not null default now(),
  claimed_by text not null,
  primary key (jobid, scheduled_at)
);
revoke all on _supalite.cron_claims from public;

  $emulation$;

  -- Supabase's administrators may use cron (grants are skipped for roles this server lacks).
  if exists (select 1 from pg_roles where rolname = 'postgres') then
    grant usage on schema cron to postgres with grant option;
    grant select, insert, update, delete on cron.job to postgres with grant option;
    grant select, delete on cron.job_run_details to postgres with grant option;
    grant usage, select on sequence cron.jobid_seq to postgres with grant option;
    grant execute on all functions in schema cron to postgres with grant option;
  end if;
  if exists (select 1 from pg_roles where rolname = 'supabase_admin') then
    grant usage on schema cron to supabase_admin with grant option;
    grant select, insert, update, delete on cron.job to supabase_admin with grant option;
    grant select, delete on cron.job_run_details to supabase_admin with grant option;
    grant usage, select on sequence cron.jobid_seq to supabase_admin with grant option;
    grant execute on all functions in schema cron to supabase_admin with grant option;
  end if;
end
$setup$;
