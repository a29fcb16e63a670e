"""The schema cache: what the Data API may name, loaded from the catalog.

Every identifier that reaches SQL from a request is looked up here first (tables, columns,
relationships, functions, types), so a request can only ever name what exists.  Loaded at start
and reloaded after DDL (the `pgrst_ddl_watch` event trigger sends `NOTIFY pgrst`) or on
`NOTIFY pgrst, 'reload schema'`, swapped atomically, so requests never see half a cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import asyncpg

from supalite.db.pg_nodes import PassThrough, view_pass_throughs

log = logging.getLogger("supalite.schema")

Cardinality = Literal["m2o", "o2m", "o2o", "m2m"]


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # format_type(): usable as a cast target as it stands
    category: str  # pg_type.typcategory: S string, N numeric, A array, U (json, tsvector…) …
    base_type: str  # the type name without schema or array brackets (e.g. "jsonb", "tsvector")
    nullable: bool
    has_default: bool
    generated: bool
    position: int
    description: str | None = None
    default: str | None = None  # the DEFAULT expression, from the catalog (missing=default)
    enum: tuple[str, ...] = ()
    max_length: int | None = None
    # A computed field: `schema.fn(row)`, the function to call with the table's row.
    computed: str | None = None
    # The type as PostgREST names it (its OpenAPI `format`): built-in types without their
    # modifier (`character varying`, not `character varying(20)`), a domain as its built-in base.
    data_type: str = ""


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    kind: str  # r table, p partitioned, v view, m matview, f foreign
    columns: dict[str, Column]
    pk: tuple[str, ...]
    insertable: bool
    updatable: bool
    deletable: bool
    description: str | None = None
    # Statement-level BEFORE triggers or INSERT rules: code that may run before an insert
    # reads its rows (db/request.py's checked inserts rely on nothing running before).
    early_hooks: bool = True

    @property
    def is_view(self) -> bool:
        return self.kind in ("v", "m")

    @property
    def qualified(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"


@dataclass(frozen=True)
class ForeignKey:
    name: str
    schema: str
    table: str
    columns: tuple[str, ...]
    ref_schema: str
    ref_table: str
    ref_columns: tuple[str, ...]


@dataclass(frozen=True)
class Relationship:
    """From `source` to `target`: how to join and whether the target is one row or many."""

    source: tuple[str, str]
    target: tuple[str, str]
    cardinality: Cardinality
    constraint: str  # the FK's name (for m2m: the FK from the junction to the target)
    # Pairs (source column, target column); for m2m, through the junction:
    source_columns: tuple[str, ...]
    target_columns: tuple[str, ...]
    junction: tuple[str, str] | None = None
    junction_source_columns: tuple[str, ...] = ()  # junction columns pointing at the source
    junction_target_columns: tuple[str, ...] = ()  # junction columns pointing at the target
    source_constraint: str = ""  # m2m: the FK from the junction to the source
    # A computed relationship: `schema.fn(source row)` returns the target's rows (no columns).
    function: str | None = None
    # o2o: the referenced side, not the one holding the foreign key (PostgREST's isParent).
    parent: bool = False

    @property
    def to_one(self) -> bool:
        return self.cardinality in ("m2o", "o2o")


@dataclass(frozen=True)
class FuncArg:
    name: str  # "" for an unnamed parameter
    type: str
    has_default: bool
    variadic: bool = False


@dataclass(frozen=True)
class Function:
    schema: str
    name: str
    args: tuple[FuncArg, ...]
    return_type: str
    returns_set: bool
    volatility: str  # i immutable, s stable, v volatile
    # The table whose rows it returns (RETURNS SETOF tbl / tbl), for filtering and embedding.
    return_table: tuple[str, str] | None
    returns_composite: bool  # a row type (table, composite type, or RETURNS TABLE/OUT params)
    description: str | None = None

    @property
    def is_void(self) -> bool:
        return self.return_type == "void"

    @property
    def qualified(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"


@dataclass
class SchemaCache:
    schemas: tuple[str, ...]
    tables: dict[tuple[str, str], Table] = field(default_factory=dict)
    relationships: dict[tuple[str, str], list[Relationship]] = field(default_factory=dict)
    functions: dict[tuple[str, str], list[Function]] = field(default_factory=dict)
    types: frozenset[str] = frozenset()  # type names a request may cast to
    # Computed fields by table: functions of a table's row returning one value, which
    # requests may select, filter and order by as if they were columns (PostgREST's rule).
    computed: dict[tuple[str, str], dict[str, Column]] = field(default_factory=dict)
    # Computed relationships by source table, then by function (schema, name): functions of
    # a table's row returning a table's row(s), embedded like relationships (PostgREST's rule).
    computed_rels: dict[tuple[str, str], dict[tuple[str, str], Relationship]] = field(
        default_factory=dict
    )
    roles: frozenset[str] = frozenset()  # roles the authenticator may become
    # A view's primary key: the columns that pass a table's whole primary key through
    # (PostgREST's view key dependencies); only OpenAPI's `<pk/>` notes use it.
    view_pks: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)

    def table(self, schema: str, name: str) -> Table | None:
        return self.tables.get((schema, name))

    def rels(self, schema: str, name: str) -> list[Relationship]:
        return self.relationships.get((schema, name), [])


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# ------------------------------------------------------------------------------- loading

# PostgREST's reading of a column: a domain's NOT NULL and DEFAULT count as the column's, its
# values and names come from the domain's base type (domains of domains followed down).
_TABLES_SQL = """
with recursive base_types(oid, base) as (
  select t.oid, t.typbasetype from pg_type t where t.typtype = 'd'
  union all
  select b.oid, t.typbasetype from base_types b join pg_type t on t.oid = b.base
  where t.typtype = 'd'
)
select n.nspname as schema, c.relname as name, c.relkind::text as kind,
  obj_description(c.oid, 'pg_class') as description,
  pg_relation_is_updatable(c.oid, true) as upd,
  exists (select from pg_trigger tg where tg.tgrelid = c.oid and not tg.tgisinternal
          and tg.tgtype & 3 = 2)  -- BEFORE (2), not FOR EACH ROW (1)
    or exists (select from pg_rewrite r where r.ev_class = c.oid and r.ev_type <> '1')
    as early_hooks,
  coalesce((
    select array_agg(a.attname order by array_position(i.indkey::int2[], a.attnum))
    from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
    where i.indrelid = c.oid and i.indisprimary), '{}') as pk,
  coalesce((
    select json_agg(json_build_object(
      'name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),
      'category', t.typcategory,
      'base', coalesce(et.typname, bt.typname, t.typname),
      'nullable', not (a.attnotnull or t.typtype = 'd' and t.typnotnull),
      'has_default', a.atthasdef or a.attidentity <> '',
      'generated', a.attgenerated <> '', 'position', a.attnum,
      'default', case
        when a.attidentity <> '' then format('nextval(%L::regclass)',
          pg_get_serial_sequence(format('%I.%I', n.nspname, c.relname), a.attname))
        when a.attgenerated = '' then coalesce(pg_get_expr(d.adbin, d.adrelid),
          case when t.typtype = 'd' then pg_get_expr(t.typdefaultbin, 0) end) end,
      'data_type', case
        when t.typtype = 'd' and rt.typnamespace = 'pg_catalog'::regnamespace
          then format_type(rt.oid, null)
        when t.typtype <> 'd' and t.typnamespace = 'pg_catalog'::regnamespace
          then format_type(t.oid, null)
        else format_type(a.atttypid, a.atttypmod) end,
      'description', col_description(c.oid, a.attnum),
      'enum', (select json_agg(e.enumlabel order by e.enumsortorder) from pg_enum e
               where e.enumtypid = coalesce(rt.oid, t.oid)),
      'max_length', information_schema._pg_char_max_length(
        information_schema._pg_truetypid(a.*, t.*), information_schema._pg_truetypmod(a.*, t.*))
    ) order by a.attnum)
    from pg_attribute a
    join pg_type t on t.oid = a.atttypid
    left join pg_type et on et.oid = t.typelem and t.typcategory = 'A'
    left join pg_type bt on bt.oid = t.typbasetype and t.typtype = 'd'
    left join pg_type rt on rt.oid = (select b.base from base_types b
      join pg_type bt2 on bt2.oid = b.base where b.oid = t.oid and bt2.typtype <> 'd')
    left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
    where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), '[]') as columns
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p', 'v', 'm', 'f') and n.nspname = any($1::text[])
  and not c.relispartition
"""

_FKS_SQL = """
select con.conname as name, sn.nspname as schema, sc.relname as table,
  array(select a.attname from unnest(con.conkey) with ordinality k(n, o)
        join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.n order by k.o) as cols,
  tn.nspname as ref_schema, tc.relname as ref_table,
  array(select a.attname from unnest(con.confkey) with ordinality k(n, o)
        join pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.n order by k.o)
    as ref_cols
from pg_constraint con
join pg_class sc on sc.oid = con.conrelid join pg_namespace sn on sn.oid = sc.relnamespace
join pg_class tc on tc.oid = con.confrelid join pg_namespace tn on tn.oid = tc.relnamespace
where con.contype = 'f' and sn.nspname not in ('pg_catalog', 'information_schema')
"""

# Views' stored queries (the `_RETURN` rule), in every schema: a view in an exposed schema may
# read a table, or another view, kept in a private one.
_VIEWS_SQL = """
select c.oid, r.ev_action::text as query
from pg_class c join pg_namespace n on n.oid = c.relnamespace
join pg_rewrite r on r.ev_class = c.oid and r.rulename = '_RETURN'
where c.relkind in ('v', 'm') and n.nspname not in ('pg_catalog', 'information_schema')
"""

# Name and column names by number of the relations those queries name.
_RELATIONS_SQL = """
select c.oid, n.nspname as schema, c.relname as name,
  json_object_agg(a.attnum, a.attname) as columns,
  (select array_agg(k.attname::text) from pg_constraint p
   join pg_attribute k on k.attrelid = p.conrelid and k.attnum = any(p.conkey)
   where p.conrelid = c.oid and p.contype = 'p') as pk
from pg_class c join pg_namespace n on n.oid = c.relnamespace
join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
where c.oid = any($1::oid[])
group by c.oid, n.nspname, c.relname
"""

# Column sets that are unique (PK or unique constraint/index): a FK on one is one-to-one.
_UNIQUE_SQL = """
select n.nspname as schema, c.relname as table,
  array(select a.attname from pg_attribute a
        where a.attrelid = i.indrelid and a.attnum = any(i.indkey) order by a.attname) as cols
from pg_index i join pg_class c on c.oid = i.indrelid
join pg_namespace n on n.oid = c.relnamespace
where (i.indisunique or i.indisprimary) and i.indpred is null and n.nspname = any($1::text[])
"""

_FUNCTIONS_SQL = """
select n.nspname as schema, p.proname as name, p.provolatile::text as volatility,
  p.proretset as returns_set, format_type(p.prorettype, null) as return_type,
  obj_description(p.oid, 'pg_proc') as description,
  rt.typtype = 'c' or coalesce('o' = any(p.proargmodes) or 't' = any(p.proargmodes), false)
    as returns_composite,
  rt.typcategory::text as return_category,
  not p.proretset or p.prorows = 1 as single_row,
  coalesce(ret.typname, rbt.typname, rt.typname) as return_base,
  (select json_build_array(rn.nspname, rc.relname) from pg_class rc
   join pg_namespace rn on rn.oid = rc.relnamespace
   where rc.oid = rt.typrelid and rc.relkind in ('r', 'p', 'v', 'm', 'f')) as return_table,
  coalesce((
    select json_agg(json_build_object(
      'name', coalesce(p.proargnames[k.o], ''),
      'type', format_type(k.t, null),
      'mode', coalesce(p.proargmodes[k.o], 'i'),
      'has_default', k.o > p.pronargs - p.pronargdefaults and k.o <= p.pronargs,
      'relation', (select json_build_array(an.nspname, ac.relname) from pg_type at
                   join pg_class ac on ac.oid = at.typrelid
                   join pg_namespace an on an.oid = ac.relnamespace
                   where at.oid = k.t and ac.relkind in ('r', 'p', 'v', 'm', 'f'))
    ) order by k.o)
    from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) with ordinality k(t, o)
  ), '[]') as args
from pg_proc p join pg_namespace n on n.oid = p.pronamespace
join pg_type rt on rt.oid = p.prorettype
left join pg_type ret on ret.oid = rt.typelem and rt.typcategory = 'A'
left join pg_type rbt on rbt.oid = rt.typbasetype and rt.typtype = 'd'
where p.prokind = 'f' and n.nspname = any($1::text[])
"""

_TYPES_SQL = """
select distinct t.typname from pg_type t join pg_namespace n on n.oid = t.typnamespace
where t.typtype in ('b', 'd', 'e', 'r', 'c', 'm') and not t.typisdefined = false
  and (n.nspname in ('pg_catalog', 'public', 'extensions') or n.nspname = any($1::text[]))
"""

_ROLES_SQL = """
select r.rolname from pg_roles r
where pg_has_role('authenticator', r.oid, 'MEMBER') and r.rolname <> 'authenticator'
"""


async def load_schema_cache(conn: asyncpg.Connection, schemas: tuple[str, ...]) -> SchemaCache:
    cache = SchemaCache(schemas=schemas)
    names = list(schemas)
    for row in await conn.fetch(_TABLES_SQL, names):
        cols = {}
        for c in json.loads(row["columns"]):
            cols[c["name"]] = Column(
                name=c["name"],
                type=c["type"],
                category=c["category"],
                base_type=c["base"],
                nullable=c["nullable"],
                has_default=c["has_default"],
                generated=c["generated"],
                position=c["position"],
                description=c["description"],
                default=c["default"],
                enum=tuple(c["enum"] or ()),
                max_length=c["max_length"],
                data_type=c["data_type"],
            )
        upd = row["upd"] or 0
        table_kind = row["kind"] in ("r", "p")
        cache.tables[(row["schema"], row["name"])] = Table(
            schema=row["schema"],
            name=row["name"],
            kind=row["kind"],
            columns=cols,
            pk=tuple(row["pk"]),
            insertable=table_kind or bool(upd & 8),
            updatable=table_kind or bool(upd & 4),
            deletable=table_kind or bool(upd & 16),
            description=row["description"],
            early_hooks=row["early_hooks"],
        )
    unique: set[tuple[str, str, tuple[str, ...]]] = {
        (r["schema"], r["table"], tuple(r["cols"])) for r in await conn.fetch(_UNIQUE_SQL, names)
    }
    fks = [
        ForeignKey(
            r["name"],
            r["schema"],
            r["table"],
            tuple(r["cols"]),
            r["ref_schema"],
            r["ref_table"],
            tuple(r["ref_cols"]),
        )
        for r in await conn.fetch(_FKS_SQL)
    ]
    exposed, cache.view_pks = await _view_exposures(conn, cache)
    cache.relationships = _relationships(cache, fks, unique, exposed)
    for row in await conn.fetch(_FUNCTIONS_SQL, names):
        args = []
        raw_args = json.loads(row["args"])
        for a in raw_args:
            if a["mode"] in ("i", "b", "v"):
                args.append(FuncArg(a["name"], a["type"], a["has_default"], a["mode"] == "v"))
        rt = json.loads(row["return_table"]) if row["return_table"] else None
        fn = Function(
            schema=row["schema"],
            name=row["name"],
            args=tuple(args),
            return_type=row["return_type"],
            returns_set=row["returns_set"],
            volatility=row["volatility"],
            return_table=(rt[0], rt[1]) if rt else None,
            returns_composite=bool(row["returns_composite"]),
            description=row["description"],
        )
        cache.functions.setdefault((fn.schema, fn.name), []).append(fn)
        field_of = _computed_field(row, fn, raw_args)
        if field_of is not None and field_of[0] in cache.tables:
            cache.computed.setdefault(field_of[0], {})[fn.name] = field_of[1]
        rel = _computed_relationship(fn, raw_args, to_one=bool(row["single_row"]))
        if rel is not None and rel.source in cache.tables and rel.target in cache.tables:
            cache.computed_rels.setdefault(rel.source, {})[(fn.schema, fn.name)] = rel
    cache.types = frozenset(r["typname"] for r in await conn.fetch(_TYPES_SQL, names))
    cache.roles = frozenset(r["rolname"] for r in await conn.fetch(_ROLES_SQL))
    return cache


# A table's columns as a view shows them: (the view, table column → view column).
Exposure = tuple[tuple[str, str], dict[str, str]]


async def _view_exposures(
    conn: asyncpg.Connection, cache: SchemaCache
) -> tuple[dict[tuple[str, str], list[Exposure]], dict[tuple[str, str], tuple[str, ...]]]:
    """For each table, the exposed views that pass some of its columns through unchanged
    (following views of views), as PostgREST finds them to embed through views; and the
    primary keys of the views that pass a table's whole primary key through."""
    passes: dict[int, dict[str, PassThrough]] = {}
    for row in await conn.fetch(_VIEWS_SQL):
        try:
            passes[row["oid"]] = {p.column: p for p in view_pass_throughs(row["query"])}
        except (IndexError, ValueError):  # a tree this reader does not follow: no embedding
            passes[row["oid"]] = {}
    oids = set(passes) | {p.table_oid for cols in passes.values() for p in cols.values()}
    relations: dict[int, tuple[str, str, dict[int, str]]] = {}
    pks: dict[tuple[str, str], tuple[str, ...]] = {}
    for row in await conn.fetch(_RELATIONS_SQL, list(oids)):
        cols = {int(k): v for k, v in json.loads(row["columns"]).items()}
        relations[row["oid"]] = (row["schema"], row["name"], cols)
        if row["pk"]:
            pks[(row["schema"], row["name"])] = tuple(row["pk"])

    def origin(oid: int, column: str, depth: int = 0) -> tuple[str, str, str] | None:
        if oid not in passes:
            schema, name, _ = relations[oid]  # present: `origin` is only called on known oids
            return schema, name, column
        p = passes[oid].get(column)
        if p is None or p.table_oid not in relations or depth > 32:
            return None
        source = relations[p.table_oid][2].get(p.attnum)
        return origin(p.table_oid, source, depth + 1) if source else None

    out: dict[tuple[str, str], list[Exposure]] = {}
    view_pks: dict[tuple[str, str], tuple[str, ...]] = {}
    for oid, (schema, name, _) in relations.items():
        view = cache.tables.get((schema, name))
        if oid not in passes or view is None:
            continue
        by_table: dict[tuple[str, str], dict[str, str]] = {}
        for column in view.columns:
            found = origin(oid, column)
            if found is not None:
                by_table.setdefault(found[:2], {}).setdefault(found[2], column)
        for table, mapping in by_table.items():
            out.setdefault(table, []).append(((schema, name), mapping))
            pk = pks.get(table, ())
            if pk and all(c in mapping for c in pk):
                view_pks[(schema, name)] = view_pks.get((schema, name), ()) + tuple(
                    mapping[c] for c in pk
                )
    return out, view_pks


def _computed_field(
    row: asyncpg.Record, fn: Function, args: list[dict[str, Any]]
) -> tuple[tuple[str, str], Column] | None:
    """(table, field) when `fn` takes exactly one argument, a table's row, and returns one
    value that is not a row: a computed field of that table, as PostgREST defines them."""
    inputs = [a for a in args if a["mode"] in ("i", "b", "v")]
    if len(inputs) != 1 or not inputs[0]["relation"] or fn.returns_set:
        return None
    if fn.returns_composite or fn.is_void:
        return None
    schema, table = inputs[0]["relation"]
    column = Column(
        name=fn.name,
        type=fn.return_type,
        category=row["return_category"],
        base_type=row["return_base"],
        nullable=True,
        has_default=False,
        generated=True,
        position=0,
        description=fn.description,
        computed=f"{quote_ident(fn.schema)}.{quote_ident(fn.name)}",
    )
    return (schema, table), column


def _computed_relationship(
    fn: Function, args: list[dict[str, Any]], *, to_one: bool
) -> Relationship | None:
    """A computed relationship when `fn` takes exactly one argument, a table's row, and
    returns rows of a table: to-one when it returns one row (`returns tbl`, or `setof tbl
    rows 1`), to-many otherwise — PostgREST's `allComputedRels`."""
    if len(args) != 1 or args[0]["mode"] != "i" or not args[0]["relation"]:
        return None
    if fn.return_table is None:
        return None
    schema, table = args[0]["relation"]
    return Relationship(
        source=(schema, table),
        target=fn.return_table,
        cardinality="m2o" if to_one else "o2m",
        constraint=fn.name,
        source_columns=(),
        target_columns=(),
        function=fn.qualified,
    )


def _relationships(
    cache: SchemaCache,
    fks: list[ForeignKey],
    unique: set[tuple[str, str, tuple[str, ...]]],
    exposed: dict[tuple[str, str], list[Exposure]] | None = None,
) -> dict[tuple[str, str], list[Relationship]]:
    rels: dict[tuple[str, str], list[Relationship]] = {}
    exposed = exposed or {}

    def add(rel: Relationship) -> None:
        rels.setdefault(rel.source, []).append(rel)

    def ends(table: tuple[str, str], columns: tuple[str, ...]) -> list[Exposure]:
        """The table itself and each view showing all of `columns`, with their names there."""
        out: list[Exposure] = [(table, {c: c for c in columns})]
        out += [(v, m) for v, m in exposed.get(table, []) if all(c in m for c in columns)]
        return [(t, m) for t, m in out if t in cache.tables]

    # Each foreign key relates its table and the referenced one, and as PostgREST does, every
    # view that shows the key's columns unchanged stands in for its table on either side.
    for fk in fks:
        one_to_one = (fk.schema, fk.table, tuple(sorted(fk.columns))) in unique
        for src, src_names in ends((fk.schema, fk.table), fk.columns):
            for dst, dst_names in ends((fk.ref_schema, fk.ref_table), fk.ref_columns):
                cols = tuple(src_names[c] for c in fk.columns)
                ref_cols = tuple(dst_names[c] for c in fk.ref_columns)
                add(Relationship(src, dst, "o2o" if one_to_one else "m2o", fk.name, cols, ref_cols))
                back: Cardinality = "o2o" if one_to_one else "o2m"
                add(Relationship(dst, src, back, fk.name, ref_cols, cols, parent=one_to_one))
    # Many-to-many: a junction table with FKs to both sides whose columns are all part of the
    # junction's primary key (PostgREST's rule).
    by_table: dict[tuple[str, str], list[ForeignKey]] = {}
    for fk in fks:
        by_table.setdefault((fk.schema, fk.table), []).append(fk)
    for junction, jfks in by_table.items():
        table = cache.tables.get(junction)
        if table is None or not table.pk:
            continue
        pk = set(table.pk)
        for a in jfks:
            for b in jfks:
                if a is b or not set(a.columns) <= pk or not set(b.columns) <= pk:
                    continue
                src, dst = (a.ref_schema, a.ref_table), (b.ref_schema, b.ref_table)
                if src not in cache.tables or dst not in cache.tables:
                    continue
                add(
                    Relationship(
                        src,
                        dst,
                        "m2m",
                        b.name,
                        a.ref_columns,
                        b.ref_columns,
                        junction=junction,
                        junction_source_columns=a.columns,
                        junction_target_columns=b.columns,
                        source_constraint=a.name,
                    )
                )
    return rels


# ------------------------------------------------------------------------------- holder


class SchemaCacheHolder:
    """The current cache, and the listener that reloads it on `NOTIFY pgrst`."""

    def __init__(
        self, connect: Callable[[], Awaitable[asyncpg.Connection]], schemas: tuple[str, ...]
    ) -> None:
        self._connect = connect
        self.schemas = schemas
        self.current: SchemaCache | None = None
        self._listener: asyncpg.Connection | None = None
        self._reload_task: asyncio.Task[None] | None = None
        self._dirty = asyncio.Event()
        self.reloads = 0

    async def start(self) -> None:
        await self.reload()
        self._listener = await self._connect()
        await self._listener.add_listener("pgrst", self._on_notify)
        self._reload_task = asyncio.create_task(self._reload_loop())

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload in ("", "reload schema"):
            self._dirty.set()

    async def _reload_loop(self) -> None:
        while True:
            await self._dirty.wait()
            # DDL often comes in bursts (a migration): coalesce them into one reload.
            await asyncio.sleep(0.05)
            self._dirty.clear()
            try:
                await self.reload()
            except Exception:  # keep serving with the previous cache; retry on next notice
                log.exception("schema cache reload failed")

    async def reload(self) -> None:
        conn = await self._connect()
        try:
            self.current = await load_schema_cache(conn, self.schemas)
            self.reloads += 1
        finally:
            await conn.close()

    async def stop(self) -> None:
        if self._reload_task:
            self._reload_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reload_task
        if self._listener:
            await self._listener.close()
