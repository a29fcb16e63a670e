"""Foreign keys as views show them: the relationships the CLI lists for views.

PostgREST (and so postgres-meta, and so `supabase gen types`) lets a view stand in for a table
on either side of a foreign key when the view passes the key's columns through unchanged,
following views of views.  A view's stored query says which table column each of its columns
passes through (read by `supalite.db.pg_nodes`); from those and the tables' keys come the
view → table, table → view and view → view relationships, one per way a view shows the columns.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

from supalite.db.pg_nodes import view_pass_throughs
from supalite.typegen.fetch import Fetch, json_value, paged
from supalite.typegen.model import ForeignKey, Relationship

# The views of the given schemas and (second parameter) other views by oid: their stored
# query and their columns by number.
_VIEWS = """
select c.oid::int8 as oid, n.nspname as schema, c.relname as name,
  r.ev_action::text as query,
  (select json_object_agg(a.attnum, a.attname) from pg_attribute a
   where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped) as columns
from pg_class c join pg_namespace n on n.oid = c.relnamespace
join pg_rewrite r on r.ev_class = c.oid and r.rulename = '_RETURN'
where c.relkind in ('v', 'm') and (n.nspname = any($1::text[]) or c.oid::int8 = any($2::int8[]))
  and c.oid::int8 > $3::int8
order by c.oid limit $4::int
"""

MAX_DEPTH = 16  # views of views followed at most this deep


@dataclass
class _View:
    schema: str
    name: str
    columns: dict[int, str]
    passes: dict[str, tuple[int, int]]  # view column → (relation oid, its column number)


async def _views(fetch: Fetch, schemas: list[str]) -> dict[int, _View]:
    """The views of `schemas`, and the views they read from, however deep."""
    views: dict[int, _View] = {}
    others: set[int] = set()
    for _ in range(MAX_DEPTH):
        for r in await paged(fetch, _VIEWS, [schemas, sorted(others)]):
            try:
                found = view_pass_throughs(r["query"])
            except (IndexError, ValueError):  # a tree this reader does not follow: no keys
                found = []
            columns = json_value(r["columns"]) or {}
            views[int(r["oid"])] = _View(
                r["schema"],
                r["name"],
                {int(k): str(v) for k, v in columns.items()},
                {p.column: (p.table_oid, p.attnum) for p in found},
            )
        read = {oid for v in views.values() for oid, _ in v.passes.values()}
        new = read - set(views) - others
        if not new:
            break
        others |= new
    return views


Exposure = tuple[_View, dict[int, list[str]]]  # a view, and base column number → its columns


def _exposures(views: dict[int, _View], schemas: list[str]) -> dict[int, list[Exposure]]:
    """For each base relation, the views of `schemas` that pass some of its columns through."""

    def origin(oid: int, column: str, depth: int = 0) -> tuple[int, int] | None:
        found = views[oid].passes.get(column)
        if found is None or depth > MAX_DEPTH or found[0] not in views:
            return found
        name = views[found[0]].columns.get(found[1])
        return origin(found[0], name, depth + 1) if name else None

    out: dict[int, list[Exposure]] = {}
    for oid, view in views.items():
        if view.schema not in schemas:
            continue
        by_base: dict[int, dict[int, list[str]]] = {}
        for _, column in sorted(view.columns.items()):
            base = origin(oid, column)
            if base is not None and base[0] not in views:
                by_base.setdefault(base[0], {}).setdefault(base[1], []).append(column)
        for base_oid, mapping in by_base.items():
            out.setdefault(base_oid, []).append((view, mapping))
    return out


async def view_relationships(
    fetch: Fetch, schemas: list[str], keys: list[ForeignKey]
) -> list[tuple[str, str, Relationship]]:
    """(schema, relation, relationship) for every way a view of `schemas` takes part in a key."""
    exposed = _exposures(await _views(fetch, schemas), schemas)

    def ends(table: int, attnums: tuple[int, ...]) -> list[tuple[_View, tuple[str, ...]]]:
        return [
            (view, combo)
            for view, mapping in exposed.get(table, [])
            if all(a in mapping for a in attnums)
            for combo in itertools.product(*(mapping[a] for a in attnums))
        ]

    out: list[tuple[str, str, Relationship]] = []
    for k in keys:
        rel = k.relationship
        sources = ends(k.oid, k.attnums)
        targets = ends(k.referenced_oid, k.referenced_attnums)
        for view, cols in sources:
            out.append((view.schema, view.name, replace(rel, columns=cols)))
        for view, cols in targets:
            out.append((k.schema, k.relation, _to(rel, view, cols)))
        for (source, cols), (target, ref_cols) in itertools.product(sources, targets):
            out.append(
                (source.schema, source.name, _to(replace(rel, columns=cols), target, ref_cols))
            )
    return out


def _to(rel: Relationship, view: _View, columns: tuple[str, ...]) -> Relationship:
    return replace(
        rel, referenced_schema=view.schema, referenced_relation=view.name,
        referenced_columns=columns,
    )  # fmt: skip
