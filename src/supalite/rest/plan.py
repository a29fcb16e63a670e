"""Plan: resolve a parsed request against the schema cache.

Every name in the request (table, column, relationship, function, cast type) is looked up
here; what does not resolve is an error with PostgREST's code, and what does resolve is carried
as a schema-cache object, so `sql.py` only ever quotes names that exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from supalite.db.schema_cache import Column, Function, Relationship, SchemaCache, Table
from supalite.rest.errors import ApiError
from supalite.rest.parse import (
    EmbedPath,
    Field,
    Filter,
    JsonIndex,
    JsonKey,
    LogicExpr,
    LogicTree,
    OpIs,
    OrderTerm,
    QueryParams,
    RowRange,
    SelectField,
    SelectItem,
    SelectRelation,
    SpreadRelation,
)

# Casts a request may write (`col::int`) that are SQL aliases rather than pg_type names.
_TYPE_ALIASES = {
    "int": "int4",
    "integer": "int4",
    "smallint": "int2",
    "bigint": "int8",
    "real": "float4",
    "float": "float8",
    "double precision": "float8",
    "boolean": "bool",
    "decimal": "numeric",
    "character varying": "varchar",
    "character": "bpchar",
    "char": "bpchar",
    "timestamp with time zone": "timestamptz",
    "timestamp without time zone": "timestamp",
    "time with time zone": "timetz",
    "time without time zone": "time",
}


@dataclass
class OutField:
    """One selected column (or JSON path into one), possibly cast, aggregated, aliased."""

    column: Column | None  # None for count()
    json_path: tuple[tuple[str, str | int], ...]  # (arrow, key or index)
    name: str  # the output key
    cast: str | None = None
    aggregate: str | None = None
    aggregate_cast: str | None = None


@dataclass
class Cond:
    """A resolved filter on one column of the node it belongs to."""

    column: Column
    json_path: tuple[tuple[str, str | int], ...]
    filter: Filter


@dataclass
class EmbedCond:
    """`rel=is.null` / `rel=not.is.null` on an embedded resource."""

    embed: Embed
    is_null: bool


@dataclass
class LogicCond:
    op: Literal["and", "or"]
    negated: bool
    children: list[Cond | EmbedCond | LogicCond]


@dataclass
class OrderOut:
    column: Column
    json_path: tuple[tuple[str, str | int], ...]
    direction: str | None
    nulls: str | None
    relationship: Relationship | None = None  # ordering by a to-one related column


@dataclass
class Node:
    """One relation in the read tree: the root, or an embedded resource."""

    table: Table
    alias: str
    star: bool = False
    fields: list[OutField] = field(default_factory=list)
    embeds: list[Embed] = field(default_factory=list)
    conds: list[Cond | EmbedCond | LogicCond] = field(default_factory=list)
    order: list[OrderOut] = field(default_factory=list)
    range: RowRange = field(default_factory=RowRange)

    @property
    def aggregated(self) -> bool:
        return any(f.aggregate for f in self.fields)


@dataclass
class Embed:
    rel: Relationship
    node: Node
    name: str  # the output key (alias or relation name)
    inner: bool
    spread: bool = False

    @property
    def lateral(self) -> str:
        return f"{self.node.alias}_l"


# ------------------------------------------------------------------------------ errors


def _pgrst(
    status: int, code: str, message: str, details: object = None, hint: object = None
) -> ApiError:
    return ApiError(status, code, message, details, hint)


def table_not_found(schema: str, name: str, cache: SchemaCache) -> ApiError:
    close = _closest(name, [t for (s, t) in cache.tables if s == schema])
    return _pgrst(
        404,
        "PGRST205",
        f"Could not find the table '{schema}.{name}' in the schema cache",
        None,
        f"Perhaps you meant the table '{schema}.{close}'" if close else None,
    )


def column_not_found(table: Table, name: str) -> ApiError:
    return _pgrst(400, "42703", f"column {table.name}.{name} does not exist")


def _closest(name: str, options: list[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return found[0] if found else None


# ------------------------------------------------------------------------------ planner


class Planner:
    def __init__(self, cache: SchemaCache, schema: str, *, aggregates: bool = True) -> None:
        self.cache = cache
        self.schema = schema
        self.aggregates = aggregates
        self._n = 0

    def _alias(self) -> str:
        self._n += 1
        return f"t{self._n}"

    # ------------------------------------------------------------------ names

    def table(self, name: str) -> Table:
        t = self.cache.table(self.schema, name)
        if t is None:
            raise table_not_found(self.schema, name, self.cache)
        return t

    def column(self, table: Table, name: str) -> Column:
        """A column of `table`, or one of its computed fields (which `*` does not include)."""
        col = table.columns.get(name)
        if col is None:
            col = self.cache.computed.get((table.schema, table.name), {}).get(name)
        if col is None:
            raise column_not_found(table, name)
        return col

    def cast_type(self, cast: str) -> str:
        """A cast written in the request, as a safely quoted type name."""
        base, array = cast.strip(), ""
        while base.endswith("[]"):
            base, array = base[:-2].strip(), array + "[]"
        name = _TYPE_ALIASES.get(base.lower(), base)
        if name not in self.cache.types:
            raise _pgrst(400, "42704", f'type "{cast}" does not exist')
        return '"' + name.replace('"', '""') + '"' + array

    @staticmethod
    def _json_path(f: Field) -> tuple[tuple[str, str | int], ...]:
        out: list[tuple[str, str | int]] = []
        for step in f.json_path:
            operand = step.operand
            out.append(
                (step.arrow, operand.index if isinstance(operand, JsonIndex) else operand.key)
            )
        return tuple(out)

    # ------------------------------------------------------------------ relationships

    def relationship(self, source: Table, name: str, hint: str | None) -> Relationship:
        """PostgREST's embedding resolution: by target name, FK column, or FK name; a hint
        (`!fk_name`, `!column`, `!junction`) narrows; more than one match is ambiguous.
        A computed relationship (a function of the source's row, in the request's schema)
        matches by the function's name, whatever the hint, and replaces the foreign-key
        relationships to the table of the same name — PostgREST's override."""
        computed = self.cache.computed_rels.get((source.schema, source.name), {})
        rels = [r for r in self.cache.rels(source.schema, source.name) if r.target not in computed]
        cands = [r for r in rels if r.target == (self.schema, name)]
        if not cands:
            # Embedding through a FK column (`select=*,owner(*)`) or a FK name.
            cands = [
                r
                for r in rels
                if (r.cardinality in ("m2o", "o2o") and r.source_columns == (name,))
                or r.constraint == name
            ]
        if hint is not None:
            cands = [
                r
                for r in cands
                if hint in (r.constraint, r.source_constraint)
                or (r.junction is not None and r.junction[1] == hint)
                or hint in r.source_columns
                or hint in r.target_columns
                or (r.target[1] == hint and r.target != (self.schema, name))
            ]
            self_ref = [r for r in cands if r.source == r.target and hint in r.target_columns]
            if self_ref and len(self_ref) < len(cands):
                # `tasks!parent_id` on a self-reference is the one-to-many direction (the
                # children); the parent is embedded by the column itself (`parent_id(...)`).
                cands = self_ref
        if (self.schema, name) in computed:
            cands = [computed[(self.schema, name)], *cands]
        if not cands:
            raise _pgrst(
                400,
                "PGRST200",
                f"Could not find a relationship between '{source.name}' and '{name}' in the"
                " schema cache",
                f"Searched for a foreign key relationship between '{source.name}' and '{name}'"
                + (f" using the hint '{hint}'" if hint else "")
                + f" in the schema '{self.schema}', but no matches were found.",
                "If a new relationship was created, try reloading the schema cache.",
            )
        if len(cands) > 1:
            # A self-reference's two directions under one FK stay ambiguous, as in PostgREST.
            raise _pgrst(
                300,
                "PGRST201",
                f"Could not embed because more than one relationship was found for"
                f" '{source.name}' and '{name}'",
                [_describe(r) for r in cands],
                f"Try changing '{name}' to one of the following: "
                + ", ".join(f"'{name}!{_hint_for(r)}'" for r in cands)
                + ". Find the desired relationship in the 'details' key.",
            )
        return cands[0]

    # ------------------------------------------------------------------ reads

    def read(self, table: Table, q: QueryParams, top_range: RowRange) -> Node:
        root = Node(table=table, alias=self._alias(), range=top_range)
        self._select(root, q.select, ())
        by_path: dict[EmbedPath, Node] = {}
        self._index(root, (), by_path)
        for path, flt in q.filters:
            node = self._node_at(by_path, path, root)
            node.conds.append(self._filter(node, flt))
        for path, tree in q.logic:
            node = self._node_at(by_path, path, root)
            node.conds.append(self._logic(node, tree))
        for path, terms in q.order:
            node = self._node_at(by_path, path, root)
            node.order = [self._order(node, t) for t in terms]
        for path, rng in q.ranges:
            if path:
                self._node_at(by_path, path, root).range = rng
        return root

    def _index(self, node: Node, path: EmbedPath, out: dict[EmbedPath, Node]) -> None:
        out[path] = node
        for e in node.embeds:
            self._index(e.node, (*path, e.name), out)

    def _node_at(self, by_path: dict[EmbedPath, Node], path: EmbedPath, root: Node) -> Node:
        node = by_path.get(tuple(path))
        if node is None:
            name = path[-1] if path else ""
            raise _pgrst(
                400,
                "PGRST108",
                f"'{name}' is not an embedded resource in this request",
                None,
                f"Verify that '{name}' is included in the 'select' query parameter.",
            )
        return node

    def _select(self, node: Node, items: tuple[SelectItem, ...], path: EmbedPath) -> None:
        if not items:
            return  # an empty embed `rel()`: no columns
        for item in items:
            if isinstance(item, SelectField):
                self._select_field(node, item)
            else:
                self._embed(node, item, path)

    def _select_field(self, node: Node, item: SelectField) -> None:
        f = item.field
        if item.aggregate and not self.aggregates:
            raise _pgrst(400, "PGRST123", "Use of aggregate functions is not allowed")
        if f.name == "*" and not f.json_path:
            if item.aggregate == "count":
                node.fields.append(
                    OutField(
                        None,
                        (),
                        item.alias or "count",
                        None,
                        "count",
                        item.aggregate_cast and self.cast_type(item.aggregate_cast),
                    )
                )
                return
            node.star = True
            return
        col = self.column(node.table, f.name)
        path = self._json_path(f)
        name = item.alias or _default_name(f)
        if item.aggregate and not item.alias:
            name = item.aggregate
        node.fields.append(
            OutField(
                col,
                path,
                name,
                self.cast_type(item.cast) if item.cast else None,
                item.aggregate,
                self.cast_type(item.aggregate_cast) if item.aggregate_cast else None,
            )
        )

    def _embed(self, node: Node, item: SelectRelation | SpreadRelation, path: EmbedPath) -> None:
        rel = self.relationship(node.table, item.relation, item.hint)
        target = self.cache.tables[rel.target]
        child = Node(table=target, alias=self._alias())
        spread = isinstance(item, SpreadRelation)
        name = item.relation if isinstance(item, SpreadRelation) else (item.alias or item.relation)
        embed = Embed(rel, child, name, item.join == "inner", spread)
        node.embeds.append(embed)
        self._select(child, item.children, (*path, name))
        if not item.children and not spread:
            child.star = False  # `rel()` renders nothing but still filters with !inner

    # ------------------------------------------------------------------ filters

    def _filter(self, node: Node, flt: Filter) -> Cond | EmbedCond:
        f = flt.field
        embed = (
            next((e for e in node.embeds if e.name == f.name), None) if not f.json_path else None
        )
        if embed is not None and f.name not in node.table.columns:
            op = flt.expr.operation
            if isinstance(op, OpIs) and op.value == "null":
                return EmbedCond(embed, is_null=not flt.expr.negated)
            raise _pgrst(
                400,
                "PGRST120",
                "Only is null or not is null filters are allowed on embedded resources",
            )
        return Cond(self.column(node.table, f.name), self._json_path(f), flt)

    def _logic(self, node: Node, tree: LogicTree) -> Cond | EmbedCond | LogicCond:
        if isinstance(tree, LogicExpr):
            return LogicCond(tree.op, tree.negated, [self._logic(node, c) for c in tree.children])
        return self._filter(node, tree)

    def _order(self, node: Node, term: OrderTerm) -> OrderOut:
        if term.relation is not None:
            rel = self.relationship(node.table, term.relation, None)
            if not rel.to_one:
                raise _pgrst(
                    400,
                    "PGRST118",
                    f"A related order on '{term.relation}' is not possible",
                    f"'{node.table.name}' and '{term.relation}' do not form a many-to-one"
                    " or one-to-one relationship",
                )
            target = self.cache.tables[rel.target]
            return OrderOut(
                self.column(target, term.field.name),
                self._json_path(term.field),
                term.direction,
                term.nulls,
                rel,
            )
        return OrderOut(
            self.column(node.table, term.field.name),
            self._json_path(term.field),
            term.direction,
            term.nulls,
        )

    # ------------------------------------------------------------------ functions

    def function(self, name: str, arg_names: set[str], *, single_json: bool) -> Function:
        """Overload resolution by argument names, as PostgREST does."""
        overloads = self.cache.functions.get((self.schema, name), [])
        fitting = []
        for fn in overloads:
            named = {a.name for a in fn.args if a.name}
            required = {a.name for a in fn.args if a.name and not a.has_default}
            if arg_names <= named and required <= arg_names:
                fitting.append(fn)
            elif (
                single_json
                and len(fn.args) == 1
                and not fn.args[0].name
                and fn.args[0].type in ("json", "jsonb")
            ):
                fitting.append(fn)  # a single unnamed json parameter takes the whole body
        if not fitting:
            listed = ", ".join(sorted(arg_names))
            raise _pgrst(
                404,
                "PGRST202",
                f"Could not find the function {self.schema}.{name}({listed}) in the schema cache",
                f"Searched for the function {self.schema}.{name} "
                + (
                    f"with parameter{'s' if len(arg_names) > 1 else ''} {listed}"
                    if arg_names
                    else "without parameters"
                )
                + " or with a single unnamed json/jsonb parameter, but no matches were found in"
                " the schema cache.",
                None,
            )
        if len(fitting) > 1:
            exact = [f for f in fitting if {a.name for a in f.args if a.name} == arg_names]
            if len(exact) == 1:
                return exact[0]
            raise _pgrst(
                300,
                "PGRST203",
                "Could not choose the best candidate function between: "
                + ", ".join(
                    f"{f.schema}.{f.name}({', '.join(a.name + ' => ' + a.type for a in f.args)})"
                    for f in fitting
                ),
                None,
                "Try renaming the parameters or the function itself in the database"
                " so function overloading can be resolved",
            )
        return fitting[0]


def _default_name(f: Field) -> str:
    for step in reversed(f.json_path):
        if isinstance(step.operand, JsonKey):
            return step.operand.key
        break
    return f.name


_CARD_NAMES = {
    "m2o": "many-to-one",
    "o2m": "one-to-many",
    "o2o": "one-to-one",
    "m2m": "many-to-many",
}


def _describe(r: Relationship) -> dict[str, str]:
    src, dst = r.source[1], r.target[1]
    if r.function:
        rel = f"{r.function}({r.source[0]}.{src})"
    elif r.junction:
        rel = f"{r.junction[1]} using {r.source_constraint} and {r.constraint}"
    else:
        rel = (
            f"{r.constraint} using {src}({', '.join(r.source_columns)}) and "
            f"{dst}({', '.join(r.target_columns)})"
        )
    return {
        "cardinality": _CARD_NAMES[r.cardinality],
        "embedding": f"{src} with {dst}",
        "relationship": rel,
    }


def _hint_for(r: Relationship) -> str:
    return r.junction[1] if r.junction else r.constraint
