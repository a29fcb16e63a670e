-- Realtime: the `supabase_realtime` publication users add tables to (as on Supabase), the
-- `realtime.messages` table whose RLS policies authorize private channels, `realtime.topic()`,
-- `realtime.send()` / `realtime.broadcast_changes()`, and supalite's own bookkeeping for
-- fan-out between processes (unlogged: it is transient, and unlogged tables are not decoded
-- from the WAL, so writing them never feeds back into the change stream).  Idempotent.

do $$
begin
  if not exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
end
$$;

-- ------------------------------------------------------------------ private channels

create table if not exists realtime.messages (
  id uuid not null default gen_random_uuid() primary key,
  topic text not null,
  extension text not null,
  payload jsonb,
  event text,
  private boolean default false,
  updated_at timestamp not null default now(),
  inserted_at timestamp not null default now()
);
alter table realtime.messages enable row level security;
grant select, insert, update on realtime.messages to anon, authenticated, service_role;

create or replace function realtime.topic() returns text
language sql stable as $$
  select nullif(current_setting('realtime.topic', true), '')::text
$$;
grant execute on function realtime.topic() to anon, authenticated, service_role;

-- ------------------------------------------------------------------ fan-out bookkeeping

-- Row changes captured from the logical replication slot by the one process holding the
-- capture lock, in commit order; every process reads them by position.
create unlogged table if not exists _supalite.realtime_changes (
  id bigserial primary key,
  body jsonb not null,
  created_at timestamptz not null default now()
);
-- The last commit stored above, so a capture that restarts never stores a transaction twice.
create unlogged table if not exists _supalite.realtime_capture (
  slot text primary key,
  commit_lsn pg_lsn not null
);
-- Bus messages too large for NOTIFY's 8000-byte payload: the notification carries the id.
create unlogged table if not exists _supalite.realtime_bus (
  id bigserial primary key,
  body text not null,
  created_at timestamptz not null default now()
);
-- Live processes, and the presences each one tracks for its sockets.
create unlogged table if not exists _supalite.realtime_nodes (
  node text primary key,
  seen_at timestamptz not null default now()
);
create unlogged table if not exists _supalite.realtime_presence (
  topic text not null,
  ref text not null,
  key text not null,
  node text not null,
  meta jsonb not null,
  primary key (topic, ref)
);
create index if not exists realtime_presence_node on _supalite.realtime_presence (node);

-- A message for every process's bus listener, from SQL: inline when it fits in a
-- notification, else through `_supalite.realtime_bus`.
create or replace function _supalite.realtime_publish(body text) returns void
language plpgsql security definer set search_path = '' as $$
declare
  bus_id bigint;
begin
  if octet_length(body) <= 7500 then
    perform pg_notify('supalite_realtime', body);
  else
    insert into _supalite.realtime_bus (body) values (body) returning id into bus_id;
    perform pg_notify('supalite_realtime', json_build_object('k', 'ref', 'id', bus_id)::text);
  end if;
end
$$;
revoke all on function _supalite.realtime_publish(text) from public;

-- Broadcast from the database, as Supabase's `realtime.send`.
create or replace function realtime.send(
  payload jsonb, event text, topic text, private boolean default true
) returns void
language plpgsql security definer set search_path = '' as $$
begin
  perform _supalite.realtime_publish(json_build_object(
    'n', 'db', 'k', 'b',
    't', case when private then 'private:' else 'public:' end || topic,
    'e', event, 'j', 1, 'd', payload::text)::text);
end
$$;
grant execute on function realtime.send(jsonb, text, text, boolean)
  to anon, authenticated, service_role;

-- A trigger helper as Supabase's: broadcasts the row change to `topic_name`.
create or replace function realtime.broadcast_changes(
  topic_name text, event_name text, operation text, table_name text, table_schema text,
  new record, old record, level text default 'ROW'
) returns void
language plpgsql as $$
begin
  perform realtime.send(
    jsonb_build_object(
      'schema', table_schema, 'table', table_name, 'operation', operation,
      'record', case when new is null then null else to_jsonb(new) end,
      'old_record', case when old is null then null else to_jsonb(old) end),
    event_name, topic_name, true);
end
$$;

-- ------------------------------------------------------------------ who sees a change

-- Per (role, claims): null (unknown role, or no SELECT on the key), true (no RLS applies), or
-- the indexes of the non-DELETE changes whose row that caller may SELECT now.
create or replace function _supalite.realtime_visible(
  rel regclass, relname text, rls boolean, keycols text[], key_cond text, changes jsonb,
  identities jsonb, guarded boolean
) returns jsonb
language plpgsql volatile set search_path = '' as $fn$
declare
  vis jsonb := '[]';
  r text;
  claims text;
  bypass boolean;
  ids jsonb;
  q text;
begin
  q := format($q$
    select coalesce(jsonb_agg(c.idx - 1), '[]')
    from jsonb_array_elements($1) with ordinality c(j, idx),
         jsonb_populate_record(null::%1$s, coalesce(nullif(c.j->'new', 'null'), '{}')) t
    where c.j->>'type' <> 'DELETE' and exists (select 1 from %1$s x where %2$s)$q$,
    relname, coalesce(key_cond, 'false'));
  for i in 0 .. coalesce(jsonb_array_length(identities), 0) - 1 loop
    r := identities->i->>0;
    claims := identities->i->>1;
    bypass := null;
    select rolbypassrls or rolsuper into bypass from pg_catalog.pg_roles where rolname = r;
    if bypass is null then  -- no such role (checked apart: the privilege checks would raise)
      vis := vis || jsonb_build_array(null::jsonb);
      continue;
    end if;
    if not has_any_column_privilege(r, rel, 'SELECT')
       or exists (select 1 from unnest(keycols) k
                  where not has_column_privilege(r, rel, k, 'SELECT')) then
      vis := vis || jsonb_build_array(null::jsonb);
      continue;
    end if;
    if not rls or bypass or key_cond is null then
      vis := vis || jsonb_build_array('true'::jsonb);
      continue;
    end if;
    perform set_config('role', r, true),
            set_config('request.jwt.claims', claims, true),
            set_config('request.jwt.claim.sub', coalesce(claims::jsonb->>'sub', ''), true),
            set_config('request.jwt.claim.role', r, true);
    if guarded then
      begin
        execute q into ids using changes;
      exception when others then
        ids := '[]';  -- a policy that raises hides the row, as a failing read would
      end;
    else
      execute q into ids using changes;
    end if;
    perform set_config('role', 'none', true),
            set_config('request.jwt.claims', '', true),
            set_config('request.jwt.claim.sub', '', true),
            set_config('request.jwt.claim.role', '', true);
    vis := vis || jsonb_build_array(ids);
  end loop;
  return vis;
end
$fn$;
revoke all on function _supalite.realtime_visible(
  regclass, text, boolean, text[], text, jsonb, jsonb, boolean) from public;

-- For one table and a batch of captured changes (text values, as decoded from the WAL), in one
-- round trip: the rows as typed JSON, which changes pass each distinct filter set, and which
-- each distinct (role, claims) may SELECT under RLS right now — the row is looked up by its
-- primary key with the role and claims set, as Supabase's `realtime.apply_rls` does; DELETEs
-- are not looked up (the row is gone).  Filter values and claims arrive as JSON parameters;
-- column names are checked against the catalog and quoted.
create or replace function _supalite.realtime_check(
  rel regclass, changes jsonb, filter_sets jsonb, identities jsonb
) returns jsonb
language plpgsql volatile set search_path = '' as $fn$
declare
  relname text := rel::text;
  rls boolean;
  keycols text[];
  cols jsonb;
  news jsonb;
  olds jsonb;
  fsets jsonb := '[]';
  vis jsonb := '[]';
  readable jsonb := '{}';
  fset jsonb;
  f jsonb;
  conds text[];
  col text;
  op text;
  sqlop text;
  ok boolean;
  r text;
  ids jsonb;
  key_cond text;
  fi int;
begin
  select c.relrowsecurity into rls from pg_catalog.pg_class c where c.oid = rel;
  select coalesce(array_agg(a.attname::text order by array_position(i.indkey::int2[], a.attnum)),
                  '{}')
    into keycols
    from pg_catalog.pg_index i
    join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
    where i.indrelid = rel and i.indisprimary;
  select coalesce(jsonb_agg(jsonb_build_object('name', a.attname, 'type', t.typname)
                            order by a.attnum), '[]')
    into cols
    from pg_catalog.pg_attribute a join pg_catalog.pg_type t on t.oid = a.atttypid
    where a.attrelid = rel and a.attnum > 0 and not a.attisdropped;

  -- Typed rows; columns the WAL did not carry (unchanged TOAST, non-key old columns) left out.
  execute format($q$
    select
      coalesce(jsonb_agg((select jsonb_object_agg(e.key, e.value)
                          from jsonb_each(to_jsonb(jsonb_populate_record(null::%1$s, coalesce(nullif(c.j->'new', 'null'), '{}')))) e
                          where (c.j->'new') ? e.key) order by c.idx), '[]'),
      coalesce(jsonb_agg((select jsonb_object_agg(e.key, e.value)
                          from jsonb_each(to_jsonb(jsonb_populate_record(null::%1$s, coalesce(nullif(c.j->'old', 'null'), '{}')))) e
                          where (c.j->'old') ? e.key) order by c.idx), '[]')
    from jsonb_array_elements($1) with ordinality c(j, idx)$q$, relname)
    into news, olds using changes;

  -- Filters, evaluated on the new row (the old one for DELETE) with the column's own type.
  for fset in select value from jsonb_array_elements(filter_sets) loop
    conds := '{}';
    ok := true;
    fi := 0;
    for f in select value from jsonb_array_elements(fset) loop
      col := f->>0;
      op := f->>1;
      if not exists (select 1 from pg_catalog.pg_attribute a
                     where a.attrelid = rel and a.attname = col and a.attnum > 0
                       and not a.attisdropped) then
        ok := false;
        exit;
      end if;
      if op = 'in' then
        conds := conds || format(
          't.%1$I = any(array(select (jsonb_populate_record(null::%2$s, jsonb_build_object(%3$L, v))).%1$I'
          ' from jsonb_array_elements(%4$s) v))',
          col, relname, col, format('$2->%s->2', fi));
      else
        sqlop := case op when 'eq' then '=' when 'neq' then '<>' when 'lt' then '<'
                         when 'lte' then '<=' when 'gt' then '>' when 'gte' then '>=' end;
        if sqlop is null then
          ok := false;
          exit;
        end if;
        conds := conds || format(
          't.%1$I %2$s (jsonb_populate_record(null::%3$s, jsonb_build_object(%4$L, %5$s))).%1$I',
          col, sqlop, relname, col, format('$2->%s->2', fi));
      end if;
      fi := fi + 1;
    end loop;
    if not ok then
      fsets := fsets || jsonb_build_array('[]'::jsonb);
      continue;
    end if;
    begin
      execute format($q$
        select coalesce(jsonb_agg(c.idx - 1), '[]')
        from jsonb_array_elements($1) with ordinality c(j, idx),
             jsonb_populate_record(null::%1$s,
               coalesce(nullif(case when c.j->>'type' = 'DELETE' then c.j->'old'
                                    else c.j->'new' end, 'null'), '{}')) t
        where %2$s$q$, relname, coalesce(array_to_string(conds, ' and '), 'true'))
        into ids using changes, fset;
    exception when others then
      ids := '[]';  -- a value that does not fit the column's type matches nothing
    end;
    fsets := fsets || jsonb_build_array(ids);
  end loop;

  select string_agg(format('x.%1$I = t.%1$I', k), ' and ') into key_cond from unnest(keycols) k;

  -- Which identities may see which rows.  The lookups run without a subtransaction each (they
  -- cost as much as the lookup itself); only if one of them fails (a policy that raises) is
  -- the batch redone with each lookup guarded, that one then seeing nothing.
  begin
    vis := _supalite.realtime_visible(rel, relname, rls, keycols, key_cond, changes, identities,
                                      false);
  exception when others then
    vis := _supalite.realtime_visible(rel, relname, rls, keycols, key_cond, changes, identities,
                                      true);
  end;
  for i in 0 .. coalesce(jsonb_array_length(identities), 0) - 1 loop
    r := identities->i->>0;
    if not readable ? r and exists (select 1 from pg_catalog.pg_roles where rolname = r) then
      readable := readable || jsonb_build_object(r, (
        select coalesce(jsonb_agg(a.attname order by a.attnum), '[]')
        from pg_catalog.pg_attribute a
        where a.attrelid = rel and a.attnum > 0 and not a.attisdropped
          and has_column_privilege(r, rel, a.attnum, 'SELECT')));
    end if;
  end loop;

  return jsonb_build_object(
    'columns', cols, 'key', to_jsonb(keycols), 'rls', rls, 'new', news, 'old', olds,
    'filters', fsets, 'visible', vis, 'readable', readable);
end
$fn$;
revoke all on function _supalite.realtime_check(regclass, jsonb, jsonb, jsonb) from public;

-- Private-channel authorization, as Supabase checks it: read = can the role SELECT probe rows
-- for the topic (inserted by the owner), write = may it INSERT them.  The caller runs this in
-- a transaction it rolls back, so the probes never persist.
create or replace function _supalite.realtime_authorize(
  r text, claims text, topic text, extensions text[]
) returns jsonb
language plpgsql volatile set search_path = '' as $fn$
declare
  ext text;
  probe uuid;
  probes jsonb := '{}';
  out jsonb := '{}';
  can_read boolean;
  can_write boolean;
begin
  foreach ext in array extensions loop
    insert into realtime.messages (topic, extension) values (topic, ext) returning id into probe;
    probes := probes || jsonb_build_object(ext, probe);
  end loop;
  perform set_config('role', r, true),
          set_config('realtime.topic', topic, true),
          set_config('request.jwt.claims', claims, true),
          set_config('request.jwt.claim.sub', coalesce(claims::jsonb->>'sub', ''), true),
          set_config('request.jwt.claim.role', r, true);
  foreach ext in array extensions loop
    begin
      select exists (select 1 from realtime.messages m where m.id = (probes->>ext)::uuid)
        into can_read;
    exception when others then
      can_read := false;
    end;
    begin
      insert into realtime.messages (topic, extension) values (topic, ext);
      can_write := true;
    exception when others then
      can_write := false;
    end;
    out := out || jsonb_build_object(ext, jsonb_build_object('read', can_read, 'write', can_write));
  end loop;
  perform set_config('role', 'none', true);
  return out;
end
$fn$;
revoke all on function _supalite.realtime_authorize(text, text, text, text[]) from public;
