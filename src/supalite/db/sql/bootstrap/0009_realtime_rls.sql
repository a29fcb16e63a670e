-- Realtime: who may see a captured change, rebuilt for many subscribers.  Supersedes 0006's
-- `_supalite.realtime_check` / `realtime_visible` (one call that re-planned a lookup query
-- for every identity; left in place so an older process sharing the database during an
-- upgrade keeps working) with two functions the server may call concurrently:
--
--   realtime_rows(rel, changes, filter_sets, roles)  the typed rows, the filters, the columns
--                                                     each role may read: once per batch
--   realtime_rls(rel, changes, identities)            per (role, claims): may it SELECT each
--                                                     changed row under RLS right now
--
-- The RLS lookup is planned once per batch (a prepared statement with the batch's keys as
-- literals) and executed once per identity with its role and claims set, as Supabase's
-- `realtime.apply_rls` does with `walrus_rls_stmt`.  Executing a prepared plan costs a small
-- fraction of parsing and planning the lookup again; the plan cache re-plans by itself when the
-- role changes (RLS plans depend on the role) or a policy changes, so RLS stays exact.  One
-- statement per identity is needed: `auth.uid()` and `(select auth.uid())` read the claims
-- once per statement.  Idempotent.

-- The primary key's columns and their types, in key order (no rows without one).
create or replace function _supalite.realtime_key(rel regclass)
returns table (name text, type text, n int)
language sql stable set search_path = '' as $fn$
  select a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod),
         array_position(i.indkey::int2[], a.attnum)
  from pg_catalog.pg_index i
  join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
  where i.indrelid = rel and i.indisprimary
  order by 3
$fn$;
revoke all on function _supalite.realtime_key(regclass) from public;

-- For one table and a batch of captured changes (text values, as decoded from the WAL): the
-- rows as typed JSON, which changes pass each distinct filter set, and the columns each role
-- may SELECT.  Filter values arrive as JSON parameters; column names are checked against the
-- catalog and quoted.
create or replace function _supalite.realtime_rows(
  rel regclass, changes jsonb, filter_sets jsonb, roles text[]
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
  fi int;
begin
  select c.relrowsecurity into rls from pg_catalog.pg_class c where c.oid = rel;
  select coalesce(array_agg(k.name order by k.n), '{}') into keycols
    from _supalite.realtime_key(rel) k;
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

  foreach r in array coalesce(roles, '{}') loop
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
    'filters', fsets, 'readable', readable);
end
$fn$;
revoke all on function _supalite.realtime_rows(regclass, jsonb, jsonb, text[]) from public;

-- Runs the prepared lookup `_supalite_rt_probe` once per [role, claims] of `checks`, each with
-- that role and those claims set (as PostgREST sets them for a request).  Unguarded, a policy
-- that raises fails the whole call (the caller then runs it guarded); guarded, each lookup
-- has its own subtransaction and one that raises sees nothing.  Without a subtransaction per
-- lookup the common case costs half as much.
create or replace function _supalite.realtime_probe(checks jsonb, guarded boolean)
returns jsonb[]
language plpgsql volatile set search_path = '' as $fn$
declare
  out jsonb[] := '{}';
  ids jsonb;
  r text;
  claims text;
begin
  for r, claims in select x->>0, x->>1 from jsonb_array_elements(checks) x loop
    perform set_config('role', r, true),
            set_config('request.jwt.claims', claims, true),
            set_config('request.jwt.claim.sub', coalesce(claims::jsonb->>'sub', ''), true),
            set_config('request.jwt.claim.role', r, true);
    if guarded then
      begin
        execute 'execute _supalite_rt_probe' into ids;
      exception when others then
        ids := '[]';  -- a policy that raises hides the row, as a failing read would
      end;
    else
      execute 'execute _supalite_rt_probe' into ids;
    end if;
    out := array_append(out, ids);
  end loop;
  perform set_config('role', 'none', true),
          set_config('request.jwt.claims', '', true),
          set_config('request.jwt.claim.sub', '', true),
          set_config('request.jwt.claim.role', '', true);
  return out;
end
$fn$;
revoke all on function _supalite.realtime_probe(jsonb, boolean) from public;

-- Per [role, claims] of `identities`, in order: null (unknown role, or no SELECT on the key),
-- true (no RLS applies: the table has none, the role bypasses it, or no key to look up), or the
-- indexes of the non-DELETE changes whose row that caller may SELECT now.  Whatever depends
-- only on the role is decided once per role.
create or replace function _supalite.realtime_rls(
  rel regclass, changes jsonb, identities jsonb
) returns jsonb
language plpgsql volatile set search_path = '' as $fn$
declare
  rls boolean;
  keycols text[];
  keytypes text[];
  per_role jsonb := '{}';  -- role -> null | true | 'probe'
  r text;
  bypass boolean;
  checks jsonb;
  probe_values text;
  key_join text;
  seen jsonb[];
  out jsonb := '[]';
begin
  select c.relrowsecurity into rls from pg_catalog.pg_class c where c.oid = rel;
  select coalesce(array_agg(k.name order by k.n), '{}'),
         coalesce(array_agg(k.type order by k.n), '{}')
    into keycols, keytypes
    from _supalite.realtime_key(rel) k;

  for r in select distinct x->>0 from jsonb_array_elements(identities) x loop
    bypass := null;
    select rolbypassrls or rolsuper into bypass from pg_catalog.pg_roles where rolname = r;
    if bypass is null  -- no such role (checked apart: the privilege checks would raise)
       or not has_any_column_privilege(r, rel, 'SELECT')
       or exists (select 1 from unnest(keycols) kc
                  where not has_column_privilege(r, rel, kc, 'SELECT')) then
      per_role := per_role || jsonb_build_object(r, null);
    elsif not rls or bypass or cardinality(keycols) = 0 then
      per_role := per_role || jsonb_build_object(r, true);
    else
      per_role := per_role || jsonb_build_object(r, 'probe');
    end if;
  end loop;

  select coalesce(jsonb_agg(x), '[]') into checks
    from jsonb_array_elements(identities) x where per_role->(x->>0) = '"probe"';

  if jsonb_array_length(checks) > 0 then
    -- The batch's keys as typed literals, each with its change's index; the values are the
    -- WAL's text output of the key columns, read back with each column's type.
    select string_agg(format('(%s, %s)', c.idx - 1, (
             select string_agg(format('%L::%s', c.j->'new'->>u.kc, u.kt), ', ' order by u.n)
             from unnest(keycols, keytypes) with ordinality u(kc, kt, n))), ', ')
      into probe_values
      from jsonb_array_elements(changes) with ordinality c(j, idx)
      where c.j->>'type' <> 'DELETE';
    if probe_values is null then
      select array_agg('[]'::jsonb) into seen from jsonb_array_elements(checks);
    else
      select string_agg(format('x.%I = v.k%s', u.kc, u.n), ' and ')
        into key_join from unnest(keycols) with ordinality u(kc, n);
      if exists (select 1 from pg_catalog.pg_prepared_statements
                 where name = '_supalite_rt_probe') then
        execute 'deallocate _supalite_rt_probe';  -- left by a call that failed
      end if;
      execute format(
        'prepare _supalite_rt_probe as select coalesce(jsonb_agg(v.i order by v.i), ''[]'')'
        ' from (values %s) v(i, %s) join %s x on %s',
        probe_values,
        (select string_agg('k' || n, ', ') from generate_series(1, cardinality(keycols)) n),
        rel::text, key_join);
      begin
        seen := _supalite.realtime_probe(checks, false);
      exception when others then
        seen := _supalite.realtime_probe(checks, true);
      end;
      execute 'deallocate _supalite_rt_probe';
    end if;
  end if;

  -- Assemble the answer in the identities' order.
  select coalesce(jsonb_agg(case when s.probed then seen[s.p::int] else per_role->s.r end
                            order by s.n), '[]')
    into out
    from (select x.v->>0 as r, x.n, per_role->(x.v->>0) = '"probe"' as probed,
                 count(*) filter (where per_role->(x.v->>0) = '"probe"')
                   over (order by x.n) as p
          from jsonb_array_elements(identities) with ordinality x(v, n)) s;
  return out;
end
$fn$;
revoke all on function _supalite.realtime_rls(regclass, jsonb, jsonb) from public;
