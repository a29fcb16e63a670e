"""What type generation needs from the catalog, as plain data.

The queries follow what postgres-meta (behind `supabase gen types`) reads: relations with their
columns, foreign keys, functions with their arguments, and the enum and composite types names
can resolve to.  They run through any `Fetch` — asyncpg directly, or the MCP server's admin SQL
path — so each one pages by oid: a path that caps rows or bytes per answer still yields all of
the catalog, one page after another.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from supalite.typegen.fetch import Fetch, json_value, paged
from supalite.typegen.model import (
    Catalog,
    Column,
    ForeignKey,
    Function,
    FunctionArg,
    PgType,
    Relation,
    Relationship,
    TypegenError,
    sort_key,
)
from supalite.typegen.view_keys import view_relationships

_KNOWN_SCHEMAS = "select n.nspname as name from pg_namespace n where n.nspname = any($1::text[])"

_RELATIONS = """
select c.oid::int8 as oid, n.nspname as schema, c.relname as name,
  case c.relkind when 'r' then 'table' when 'p' then 'partitioned_table'
    when 'v' then 'view' when 'm' then 'materialized_view' else 'foreign_table' end as kind,
  c.relkind = 'v' and (pg_relation_is_updatable(c.oid, false) & 20) = 20 as is_updatable,
  coalesce((
    select json_agg(json_build_object(
      'name', a.attname,
      'type', coalesce(bt.typname, t.typname),
      'nullable', not (a.attnotnull or (t.typtype = 'd' and t.typnotnull)),
      'has_default', a.atthasdef,
      'identity', case a.attidentity when 'a' then 'ALWAYS' when 'd' then 'BY DEFAULT' end,
      'generated', a.attgenerated <> '',
      'updatable', c.relkind in ('r', 'p')
        or (c.relkind in ('v', 'f') and pg_column_is_updatable(c.oid, a.attnum, false))
    ) order by a.attnum)
    from pg_attribute a
    join pg_type t on t.oid = a.atttypid
    left join pg_type bt on t.typtype = 'd' and bt.oid = t.typbasetype
    where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
  ), '[]') as columns
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p', 'v', 'm', 'f') and n.nspname = any($1::text[])
  and c.oid::int8 > $2::int8
order by c.oid limit $3::int
"""

# PostgREST's (and postgres-meta's) reading of foreign keys: a key is one-to-one when its
# columns are also a primary key or unique constraint of its table.  The numbers let views
# stand in for the tables (view_keys).
_RELATIONSHIPS = """
select k.oid::int8 as oid, k.conname as foreign_key_name, sn.nspname as schema,
  sc.relname as relation, tn.nspname as referenced_schema, tc.relname as referenced_relation,
  array(select a.attname from unnest(k.conkey) with ordinality u(n, o)
        join pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.n order by u.o)
    as columns,
  array(select a.attname from unnest(k.confkey) with ordinality u(n, o)
        join pg_attribute a on a.attrelid = k.confrelid and a.attnum = u.n order by u.o)
    as referenced_columns,
  exists (select 1 from pg_constraint u
          where u.conrelid = k.conrelid and u.contype in ('p', 'u')
            and u.conkey @> k.conkey and u.conkey <@ k.conkey) as is_one_to_one,
  k.conrelid::int8 as relation_oid, k.conkey::int[] as attnums,
  k.confrelid::int8 as referenced_oid, k.confkey::int[] as referenced_attnums
from pg_constraint k
join pg_class sc on sc.oid = k.conrelid join pg_namespace sn on sn.oid = sc.relnamespace
join pg_class tc on tc.oid = k.confrelid join pg_namespace tn on tn.oid = tc.relnamespace
where k.contype = 'f' and k.conparentid = 0 and sn.nspname = any($1::text[])
  and k.oid::int8 > $2::int8
order by k.oid limit $3::int
"""

# Every argument, OUT and TABLE ones included, with its mode; only IN-ish arguments can have a
# default, and the last `pronargdefaults` of them do.
_FUNCTIONS = """
select p.oid::int8 as oid, n.nspname as schema, p.proname as name,
  pg_get_function_arguments(p.oid) as argument_types,
  pg_get_function_result(p.oid) as return_type,
  p.prorettype::int8 as return_type_oid,
  nullif(rt.typrelid, 0)::int8 as return_type_relation_oid,
  p.proretset as returns_set,
  case when p.proretset then nullif(p.prorows, 0)::int end as rows,
  coalesce((
    select json_agg(json_build_object(
      'name', x.name, 'mode', x.mode, 'type_oid', x.t, 'in_position', x.in_position
    ) order by x.o)
    from (
      select a.o, a.t::int8 as t, coalesce(p.proargnames[a.o], '') as name, m.mode,
        case when m.mode in ('in', 'inout', 'variadic') then
          count(*) filter (where m.mode in ('in', 'inout', 'variadic')) over (order by a.o)
        end as in_position
      from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) with ordinality a(t, o)
      cross join lateral (
        select case coalesce(p.proargmodes[a.o], 'i') when 'i' then 'in' when 'o' then 'out'
          when 'b' then 'inout' when 'v' then 'variadic' else 'table' end as mode
      ) m
    ) x
  ), '[]') as args,
  p.pronargs::int as nargs, p.pronargdefaults::int as ndefaults
from pg_proc p join pg_namespace n on n.oid = p.pronamespace
join pg_type rt on rt.oid = p.prorettype
where p.prokind = 'f' and n.nspname = any($1::text[])
  and rt.typname not in ('trigger', 'event_trigger')
  and p.oid::int8 > $2::int8
order by p.oid limit $3::int
"""

# Enums and composite types of every schema (names resolve across schemas, as in the CLI), and
# the types that arguments, results and attributes name.
_TYPES = """
select t.oid::int8 as oid, n.nspname as schema, t.typname as name,
  format_type(t.oid, null) as format,
  coalesce((select json_agg(e.enumlabel order by e.enumsortorder) from pg_enum e
            where e.enumtypid = t.oid), '[]') as enum_values,
  coalesce((select json_agg(json_build_array(a.attname, a.atttypid::int8) order by a.attnum)
            from pg_attribute a where a.attrelid = t.typrelid and c.relkind = 'c'
              and a.attnum > 0 and not a.attisdropped), '[]') as attributes,
  nullif(t.typrelid, 0)::int8 as relation_oid
from pg_type t join pg_namespace n on n.oid = t.typnamespace
left join pg_class c on c.oid = t.typrelid
where (t.typtype = 'e' or c.relkind = 'c' or t.oid::int8 = any($1::int8[]))
  and n.nspname !~ '^pg_toast' and t.oid::int8 > $2::int8
order by t.oid limit $3::int
"""


async def introspect(fetch: Fetch, schemas: Sequence[str], *, strict: bool = True) -> Catalog:
    """The catalog of `schemas`.  A schema that does not exist is an error when `strict`, and
    left out otherwise (the CLI's defaults name `graphql_public`, which may not exist)."""
    wanted = sorted(set(schemas), key=sort_key)
    found = {r["name"] for r in await fetch(_KNOWN_SCHEMAS, [wanted])}
    missing = [s for s in wanted if s not in found]
    if missing and strict:
        raise TypegenError(f"schema {', '.join(map(repr, missing))} does not exist")
    names = [s for s in wanted if s in found]
    relations = [
        Relation(
            oid=int(r["oid"]),
            schema=r["schema"],
            name=r["name"],
            kind=r["kind"],
            is_updatable=bool(r["is_updatable"]),
            columns=[
                Column(
                    name=c["name"],
                    type=c["type"],
                    nullable=bool(c["nullable"]),
                    has_default=bool(c["has_default"]),
                    identity=c["identity"],
                    generated=bool(c["generated"]),
                    updatable=bool(c["updatable"]),
                )
                for c in json_value(r["columns"])
            ],
        )
        for r in await paged(fetch, _RELATIONS, [names])
    ]
    keys = [
        ForeignKey(
            Relationship(
                foreign_key_name=k["foreign_key_name"],
                columns=tuple(k["columns"]),
                is_one_to_one=bool(k["is_one_to_one"]),
                referenced_schema=k["referenced_schema"],
                referenced_relation=k["referenced_relation"],
                referenced_columns=tuple(k["referenced_columns"]),
            ),
            schema=k["schema"],
            relation=k["relation"],
            oid=int(k["relation_oid"]),
            attnums=tuple(k["attnums"]),
            referenced_oid=int(k["referenced_oid"]),
            referenced_attnums=tuple(k["referenced_attnums"]),
        )
        for k in await paged(fetch, _RELATIONSHIPS, [names])
    ]
    by_name = {(r.schema, r.name): r for r in relations}
    related = [(k.schema, k.relation, k.relationship) for k in keys]
    related += await view_relationships(fetch, names, keys)
    for schema, name, relationship in related:
        if (schema, name) in by_name:
            by_name[(schema, name)].relationships.append(relationship)
    functions = [_function(r) for r in await paged(fetch, _FUNCTIONS, [names])]
    types = await _types(fetch, functions)
    return Catalog(names, relations, functions, types)


def _function(r: dict[str, Any]) -> Function:
    first_default = int(r["nargs"]) - int(r["ndefaults"])
    args = tuple(
        FunctionArg(
            name=a["name"],
            mode=a["mode"],
            type_oid=int(a["type_oid"]),
            has_default=a["in_position"] is not None and int(a["in_position"]) > first_default,
        )
        for a in json_value(r["args"])
    )
    rel = r["return_type_relation_oid"]
    return Function(
        oid=int(r["oid"]),
        schema=r["schema"],
        name=r["name"],
        args=args,
        argument_types=r["argument_types"],
        return_type=r["return_type"],
        return_type_oid=int(r["return_type_oid"]),
        return_type_relation_oid=int(rel) if rel is not None else None,
        returns_set=bool(r["returns_set"]),
        rows=int(r["rows"]) if r["rows"] is not None else None,
    )


async def _types(fetch: Fetch, functions: list[Function]) -> dict[int, PgType]:
    wanted = {f.return_type_oid for f in functions} | {
        a.type_oid for f in functions for a in f.args
    }
    types: dict[int, PgType] = {}
    # Composite attributes may name types not fetched yet: a second round finds those.
    for _ in range(8):
        for r in await paged(fetch, _TYPES, [sorted(wanted)]):
            types[int(r["oid"])] = PgType(
                oid=int(r["oid"]),
                schema=r["schema"],
                name=r["name"],
                format=r["format"],
                enum_values=tuple(json_value(r["enum_values"])),
                attributes=tuple((str(a[0]), int(a[1])) for a in json_value(r["attributes"])),
                relation_oid=int(r["relation_oid"]) if r["relation_oid"] is not None else None,
            )
        missing = {oid for t in types.values() for _, oid in t.attributes} - set(types)
        if not missing:
            break
        wanted |= missing
    return types
