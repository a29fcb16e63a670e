"""Render plans to one SQL statement each, with every value a bind parameter.

Identifiers come only from schema-cache objects (quoted here); request values only ever become
`$n` parameters.  Postgres renders the JSON (`json_agg`), so the response body comes back as
one text value that Python passes through untouched.

Values arrive as text and are cast to the column's type in SQL (`$1::text::"int4"`): the cast is
Postgres's own input function, so "what does this string mean for this column" is answered by
the database exactly as PostgREST lets it answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from supalite.db.request import SESSION_DIGEST
from supalite.db.schema_cache import Column, Function, Relationship, Table, quote_ident
from supalite.rest.parse import (
    Filter,
    OpFts,
    OpIn,
    OpIs,
    OpIsDistinct,
    OpQuant,
    OpSimple,
)
from supalite.rest.plan import Cond, Embed, EmbedCond, LogicCond, Node, OrderOut, OutField

q = quote_ident

_SIMPLE_OPS = {
    "eq": "=",
    "neq": "<>",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
    "like": "LIKE",
    "ilike": "ILIKE",
    "match": "~",
    "imatch": "~*",
    "cs": "@>",
    "cd": "<@",
    "ov": "&&",
    "sl": "<<",
    "sr": ">>",
    "nxr": "&<",
    "nxl": "&>",
    "adj": "-|-",
}
_TEXT_OPS = {"like", "ilike", "match", "imatch"}
_FTS_FUNCS = {
    "fts": "to_tsquery",
    "plfts": "plainto_tsquery",
    "phfts": "phraseto_tsquery",
    "wfts": "websearch_to_tsquery",
}
_IS_VALUES = {
    "null": "NULL",
    "not_null": "NOT NULL",
    "true": "TRUE",
    "false": "FALSE",
    "unknown": "UNKNOWN",
}


@dataclass
class Params:
    values: list[Any] = field(default_factory=list)

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"

    def text(self, value: str) -> str:
        return f"{self.add(value)}::text"


# ------------------------------------------------------------------------------ expressions


def _column_expr(
    alias: str, col: Column, path: tuple[tuple[str, str | int], ...], p: Params
) -> str:
    # A computed field is its function called with the row (PostgREST's `fn(tbl)`).
    expr = f"{col.computed}({q(alias)})" if col.computed else f"{q(alias)}.{q(col.name)}"
    if path and col.base_type not in ("json", "jsonb"):
        expr = f"to_jsonb({expr})"  # composite/array columns, as PostgREST allows
    for arrow, key in path:
        operand = f"{p.add(key)}::int" if isinstance(key, int) else p.text(key)
        expr = f"{expr}{arrow}{operand}"
    return expr


def _value_type(col: Column, path: tuple[tuple[str, str | int], ...]) -> str:
    """The SQL type a filter value must take to compare with the (path into the) column."""
    if not path:
        return col.type
    if path[-1][0] == "->>":
        return "text"
    return "jsonb" if col.base_type == "jsonb" or col.base_type not in ("json",) else "json"


def _cond(alias: str, c: Cond | EmbedCond | LogicCond, p: Params) -> str:
    if isinstance(c, LogicCond):
        joiner = " AND " if c.op == "and" else " OR "
        inner = joiner.join(_cond(alias, x, p) for x in c.children) or (
            "TRUE" if c.op == "and" else "FALSE"
        )
        return f"NOT ({inner})" if c.negated else f"({inner})"
    if isinstance(c, EmbedCond):
        e = c.embed
        if e.rel.to_one:
            test = f"{q(e.lateral)}.{q('pgrst_row')} IS NULL"
        else:
            test = f"coalesce(json_array_length({q(e.lateral)}.{q('pgrst_row')}), 0) = 0"
        return test if c.is_null else f"NOT ({test})"
    return _filter(alias, c, p)


def _filter(alias: str, c: Cond, p: Params) -> str:
    flt: Filter = c.filter
    lhs = _column_expr(alias, c.column, c.json_path, p)
    vtype = _value_type(c.column, c.json_path)
    op = flt.expr.operation
    if isinstance(op, OpIs):
        sql = f"{lhs} IS {_IS_VALUES[op.value]}"
    elif isinstance(op, OpIsDistinct):
        sql = f"{lhs} IS DISTINCT FROM {p.text(op.value)}::{vtype}"
    elif isinstance(op, OpIn):
        sql = f"{lhs} = ANY({p.add(list(op.values))}::text[]::{vtype}[])"
    elif isinstance(op, OpFts):
        fn = _FTS_FUNCS[op.op]
        lang = f"{p.text(op.language)}::regconfig, " if op.language else ""
        target = (
            lhs
            if c.column.base_type == "tsvector" and not c.json_path
            else (f"to_tsvector({lang}{lhs})")
        )
        sql = f"{target} @@ {fn}({lang}{p.text(op.value)})"
    elif isinstance(op, OpQuant):
        sqlop = _SIMPLE_OPS[op.op]
        rtype = "text" if op.op in _TEXT_OPS else vtype
        if op.quantifier:
            arr = _pg_array_elements(op.value)
            sql = f"{lhs} {sqlop} {op.quantifier.upper()}({p.add(arr)}::text[]::{rtype}[])"
        else:
            sql = f"{lhs} {sqlop} {p.text(op.value)}::{rtype}"
    else:
        assert isinstance(op, OpSimple)
        sql = f"{lhs} {_SIMPLE_OPS[op.op]} {p.text(op.value)}::{vtype}"
    return f"NOT ({sql})" if flt.expr.negated else sql


def _pg_array_elements(literal: str) -> list[str]:
    """`{a,"b,c"}` (the quantifier's array literal) → ["a", "b,c"]."""
    s = literal.strip()
    if s.startswith("{") and s.endswith("}"):
        s = s[1:-1]
    out, cur, quoted, i = [], [], False, 0
    while i < len(s):
        ch = s[i]
        if ch == "\\" and i + 1 < len(s):
            cur.append(s[i + 1])
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
        i += 1
    if cur or out:
        out.append("".join(cur).strip())
    return out


def _out_expr(alias: str, f: OutField, p: Params) -> str:
    if f.column is None:
        expr = "count(*)"
    else:
        expr = _column_expr(alias, f.column, f.json_path, p)
        if f.cast:
            expr = f"CAST({expr} AS {f.cast})"
        if f.aggregate:
            expr = f"{f.aggregate}({expr})"
    if f.aggregate_cast:
        expr = f"CAST({expr} AS {f.aggregate_cast})"
    return expr


def _order(alias: str, o: OrderOut, p: Params) -> str:
    if o.relationship is not None:
        rel = o.relationship
        t = "pgrst_o"
        inner = _column_expr(t, o.column, o.json_path, p)
        join = " AND ".join(
            f"{q(t)}.{q(tc)} = {q(alias)}.{q(sc)}"
            for sc, tc in zip(rel.source_columns, rel.target_columns, strict=True)
        )
        if rel.function is not None:
            expr = f"(SELECT {inner} FROM {_computed_from(rel, alias)} AS {q(t)} LIMIT 1)"
        else:
            target = f"{q(rel.target[0])}.{q(rel.target[1])}"
            expr = f"(SELECT {inner} FROM {target} AS {q(t)} WHERE {join} LIMIT 1)"
    else:
        expr = _column_expr(alias, o.column, o.json_path, p)
    s = expr + (" DESC" if o.direction == "desc" else " ASC" if o.direction == "asc" else "")
    if o.nulls:
        s += " NULLS FIRST" if o.nulls == "first" else " NULLS LAST"
    return s


# ------------------------------------------------------------------------------ reads


def _computed_from(rel: Relationship, parent_alias: str) -> str:
    """A computed relationship's rows: its function called with the parent's row, cast to the
    table the function takes (the parent may be a CTE's row, as PostgREST casts for RPC)."""
    source = f"{q(rel.source[0])}.{q(rel.source[1])}"
    return f"{rel.function}({q(parent_alias)}::{source})"


def _join_condition(e: Embed, parent_alias: str) -> str:
    rel, a = e.rel, e.node.alias
    pairs = zip(rel.source_columns, rel.target_columns, strict=True)
    if rel.junction is None:
        return " AND ".join(f"{q(a)}.{q(tc)} = {q(parent_alias)}.{q(sc)}" for sc, tc in pairs)
    j = f"{q(rel.junction[0])}.{q(rel.junction[1])}"
    src = " AND ".join(
        f"pgrst_j.{q(jc)} = {q(parent_alias)}.{q(sc)}"
        for jc, sc in zip(rel.junction_source_columns, rel.source_columns, strict=True)
    )
    dst = " AND ".join(
        f"pgrst_j.{q(jc)} = {q(a)}.{q(tc)}"
        for jc, tc in zip(rel.junction_target_columns, rel.target_columns, strict=True)
    )
    return f"EXISTS (SELECT 1 FROM {j} AS pgrst_j WHERE {src} AND {dst})"


def select_list(node: Node, p: Params) -> list[str]:
    """The node's output columns (its own, then its embeds') as `expr AS "name"`."""
    cols: list[str] = []
    if node.star:
        cols += [f"{q(node.alias)}.{q(c)}" for c in node.table.columns]
    cols += [f"{_out_expr(node.alias, f, p)} AS {q(f.name)}" for f in node.fields]
    for e in node.embeds:
        if e.spread:
            cols += [f"{q(e.lateral)}.{q(n)} AS {q(n)}" for n in _output_names(e.node)]
        else:
            cols.append(f"{q(e.lateral)}.{q('pgrst_row')} AS {q(e.name)}")
    return cols


def _output_names(node: Node) -> list[str]:
    names = list(node.table.columns) if node.star else []
    names += [f.name for f in node.fields]
    for e in node.embeds:
        names += _output_names(e.node) if e.spread else [e.name]
    return names


def _laterals(node: Node, p: Params, *, only_filtering: bool = False) -> str:
    """LEFT/INNER JOIN LATERAL for each embed (or only those that filter the parent)."""
    parts = []
    for e in node.embeds:
        if only_filtering and not (e.inner or _filters_on(node, e)):
            continue
        join = "INNER" if e.inner else "LEFT"
        parts.append(
            f" {join} JOIN LATERAL ({_embed_subquery(e, node.alias, p)}) AS {q(e.lateral)} ON TRUE"
        )
    return "".join(parts)


def _filters_on(node: Node, e: Embed) -> bool:
    def walk(c: Cond | EmbedCond | LogicCond) -> bool:
        if isinstance(c, EmbedCond):
            return c.embed is e
        if isinstance(c, LogicCond):
            return any(walk(x) for x in c.children)
        return False

    return any(walk(c) for c in node.conds)


def _where(node: Node, p: Params, extra: list[str] | None = None) -> str:
    conds = list(extra or []) + [_cond(node.alias, c, p) for c in node.conds]
    return f" WHERE {' AND '.join(conds)}" if conds else ""


def _order_limit(node: Node, p: Params, max_rows: int | None) -> str:
    s = ""
    if node.order:
        s += " ORDER BY " + ", ".join(_order(node.alias, o, p) for o in node.order)
    limit = node.range.limit
    if max_rows is not None and (limit is None or limit > max_rows):
        limit = max_rows
    if limit is not None:
        # A literal, from the int the parser made of the request (no request text reaches
        # SQL): as a bind parameter, the generic plan cannot know the limit, its cost never
        # matches the custom plans', and Postgres planned every execution afresh (a third of
        # a 100-row list's database time).
        s += f" LIMIT {int(limit)}"
    if node.range.offset:
        s += f" OFFSET {p.add(node.range.offset)}::bigint"
    return s


def _group_by(node: Node) -> str:
    if not node.aggregated:
        return ""
    keys = [f"{q(node.alias)}.{q(c)}" for c in node.table.columns] if node.star else []
    keys += [q(f.name) for f in node.fields if not f.aggregate]
    keys += [q(e.name) for e in node.embeds if not e.spread]
    return f" GROUP BY {', '.join(keys)}" if keys else ""


def _embed_subquery(e: Embed, parent_alias: str, p: Params) -> str:
    child = e.node
    cols = select_list(child, p) or ["NULL"]
    if e.rel.function is not None:  # the function picks the rows: no join condition
        frm, join = _computed_from(e.rel, parent_alias), []
    else:
        frm, join = child.table.qualified, [_join_condition(e, parent_alias)]
    inner = (
        f"SELECT {', '.join(cols)} FROM {frm} AS {q(child.alias)}"
        + _laterals(child, p)
        + _where(child, p, join)
        + _group_by(child)
    )
    if e.rel.to_one:
        inner += _order_limit(child, p, None)
        if e.spread:
            return inner
        return f"SELECT row_to_json(pgrst_r) AS pgrst_row FROM ({inner}) AS pgrst_r"
    inner += _order_limit(child, p, None)
    having = " HAVING count(*) > 0" if e.inner else ""
    if e.spread:
        names = _output_names(child)
        aggs = ", ".join(f"json_agg(pgrst_r.{q(n)}) AS {q(n)}" for n in names)
        return f"SELECT {aggs} FROM ({inner}) AS pgrst_r{having}"
    agg = "json_agg(pgrst_r)" if e.inner else "coalesce(json_agg(pgrst_r), '[]')"
    return f"SELECT {agg} AS pgrst_row FROM ({inner}) AS pgrst_r{having}"


def read_source(
    node: Node, p: Params, source: str | None = None, *, max_rows: int | None = None
) -> str:
    """The SELECT for the root node, over its table or over `source` (a CTE or a call)."""
    cols = select_list(node, p) or ["NULL"]
    frm = source or node.table.qualified
    return (
        f"SELECT {', '.join(cols)} FROM {frm} AS {q(node.alias)}"
        + _laterals(node, p)
        + _where(node, p)
        + _group_by(node)
        + _order_limit(node, p, max_rows)
    )


def count_query(
    node: Node, p: Params, source: str | None = None, *, at_most: int | None = None
) -> str:
    """The rows the filters select, counted (stopping past `at_most` when given: the
    count=estimated case, which only needs to know that max-rows was exceeded)."""
    rows = count_rows(node, p, source)
    if at_most is None:
        return f"SELECT count(*) FROM ({rows}) AS pgrst_rows"
    return f"SELECT count(*) FROM ({rows} LIMIT {int(at_most)}) AS pgrst_rows"


def count_rows(node: Node, p: Params, source: str | None = None) -> str:
    """`SELECT 1` for each row the filters select: what a count counts and what
    count=planned asks the planner to estimate (PostgREST's readPlanToCountQuery)."""
    frm = source or node.table.qualified
    return (
        f"SELECT 1 FROM {frm} AS {q(node.alias)}"
        + _laterals(node, p, only_filtering=True)
        + _where(node, p)
    )


def explain_rows(rows_sql: str) -> str:
    """The planner's estimate of a query's rows, read from EXPLAIN's JSON by the caller."""
    return f"EXPLAIN (FORMAT JSON) {rows_sql}"


NO_BODY = "none"  # a body shape beside the media types: the statement renders no body

_BODIES = {
    "json": "coalesce(json_agg(_postgrest_t), '[]')::text",
    "json_stripped": "coalesce(json_strip_nulls(json_agg(_postgrest_t)), '[]')::text",
    "single": "coalesce((json_agg(_postgrest_t) -> 0)::text, '')",
    "single_stripped": "coalesce(json_strip_nulls(json_agg(_postgrest_t) -> 0)::text, '')",
    # PostgREST's CSV: the keys of the first row, then each row in Postgres's record text
    # format without its parentheses (quoted where the value needs it, NULL as empty).
    "csv": "(SELECT coalesce(string_agg(pgrst_k, ','), '') FROM (SELECT json_object_keys("
    "row_to_json(pgrst_h)) AS pgrst_k FROM (SELECT * FROM pgrst_source LIMIT 1) AS pgrst_h) "
    "AS pgrst_keys) || E'\\n' || coalesce(string_agg(substring(_postgrest_t::text, 2, "
    "length(_postgrest_t::text) - 2), E'\\n'), '')",
    # PostgREST's GeoJSON (SqlFragment.asGeoJsonF): PostGIS ≥ 3 makes each row a Feature, its
    # geometry column the geometry and the other columns the properties.  The function is
    # found on the request's search path (`extensions` is on it, where Supabase keeps PostGIS),
    # as PostgREST finds it; without PostGIS the statement fails with 42883.
    "geojson": "json_build_object('type', 'FeatureCollection', 'features', "
    "coalesce(json_agg(ST_AsGeoJSON(_postgrest_t)::json), '[]'))::text",
    # No body at all (PostgREST's NoAgg): HEAD, and writes that return no representation.
    NO_BODY: "''::text",
}


# What the statement's own SQL set for the response (PostgREST's response.* GUCs), and, for
# whatever may be a read, the digest of the settings it ran under (db/request.py:
# request_statement).
_WRITE_GUCS = (
    "nullif(current_setting('response.headers', true), '') AS response_headers, "
    "nullif(current_setting('response.status', true), '') AS response_status"
)
_RESPONSE_GUCS = f"{_WRITE_GUCS}, {SESSION_DIGEST}"


def wrap_body(
    source_sql: str, *, count_sql: str | None, media: str, extra: str = "", read: bool = True
) -> str:
    """The final statement: total, page size, and the body as one text in the media's shape."""
    total = f"({count_sql})" if count_sql else "NULL::bigint"
    gucs = _RESPONSE_GUCS if read else _WRITE_GUCS
    return (
        f"WITH pgrst_source AS ({source_sql}) "
        f"SELECT {total} AS total, count(_postgrest_t) AS page_total, {_BODIES[media]} AS body, "
        f"{gucs}{extra} FROM pgrst_source AS _postgrest_t"
    )


def scalar_call(prefix: str, call: str, *, returns_set: bool, media: str = "json") -> str:
    """A function returning scalars: its value (or, for SETOF, an array of them) as JSON; as
    GeoJSON, the rows of its values (`pgrst_scalar`) as features, as PostgREST renders them."""
    frm = f" FROM {prefix.removesuffix(', LATERAL ')}" if prefix else ""
    if returns_set or media == "geojson":
        body = "coalesce(json_agg(_postgrest_t.pgrst_scalar), '[]')::text"
        if media == "geojson":
            body = _BODIES[media]
        return (
            f"WITH pgrst_source AS (SELECT {call} AS pgrst_scalar{frm}) "
            f"SELECT NULL::bigint AS total, count(*) AS page_total, {body} AS body, "
            f"{_RESPONSE_GUCS} FROM pgrst_source AS _postgrest_t"
        )
    return (
        "SELECT NULL::bigint AS total, 1::bigint AS page_total, "
        f"to_json({call})::text AS body, {_RESPONSE_GUCS}{frm}"
    )


# ------------------------------------------------------------------------------ writes


def insert_sql(
    table: Table,
    columns: list[str],
    p: Params,
    body_param: str,
    *,
    on_conflict: tuple[str, ...] | None,
    resolution: str | None,
    returning: str,
    missing_default: bool = False,
) -> str:
    cols = ", ".join(q(c) for c in columns)
    defs = _record_defs(table, columns)
    if columns and missing_default:
        # Keys a row lacks take the column's DEFAULT (its catalog expression), per row.
        exprs = ", ".join(
            f"CASE WHEN pgrst_e.j::jsonb ? {p.text(c)} THEN pgrst_r.{q(c)} ELSE "
            f"{table.columns[c].default or 'NULL'} END"
            for c in columns
        )
        sql = (
            f"INSERT INTO {table.qualified} ({cols}) SELECT {exprs} FROM "
            f"json_array_elements({body_param}) WITH ORDINALITY AS pgrst_e(j, n), "
            f"LATERAL json_to_record(pgrst_e.j) AS pgrst_r({defs}) "
            "ORDER BY pgrst_e.n"
        )
    elif columns:
        rows = f"SELECT {cols} FROM json_to_recordset({body_param}) AS pgrst_body({defs})"
        sql = f"INSERT INTO {table.qualified} ({cols}) {rows}"
    else:  # `{}` or `[{}, {}]`: rows of defaults only
        sql = f"INSERT INTO {table.qualified} SELECT FROM json_array_elements({body_param})"
    if resolution and on_conflict:
        target = ", ".join(q(c) for c in on_conflict)
        if resolution == "ignore-duplicates":
            sql += f" ON CONFLICT ({target}) DO NOTHING"
        else:
            sets = ", ".join(f"{q(c)} = EXCLUDED.{q(c)}" for c in columns)
            sql += f" ON CONFLICT ({target}) DO " + (f"UPDATE SET {sets}" if sets else "NOTHING")
    return f"{sql} RETURNING {returning}"


def update_sql(node: Node, columns: list[str], p: Params, body_param: str, returning: str) -> str:
    t = node.table
    sets = ", ".join(f"{q(c)} = pgrst_body.{q(c)}" for c in columns)
    return (
        f"UPDATE {t.qualified} AS {q(node.alias)} SET {sets} "
        f"FROM json_to_record({body_param}) AS pgrst_body({_record_defs(t, columns)})"
        f"{_where(node, p)} RETURNING {returning}"
    )


def _record_defs(table: Table, columns: list[str]) -> str:
    """The body's columns with their types, for json_to_record(set): only the columns sent
    (as PostgREST does), since a row of the whole table type checks every column's domain,
    and a NOT NULL domain refuses the NULL of a column left out (to take its default)."""
    return ", ".join(f"{q(c)} {table.columns[c].type}" for c in columns)


def delete_sql(node: Node, p: Params, returning: str) -> str:
    return (
        f"DELETE FROM {node.table.qualified} AS {q(node.alias)}{_where(node, p)} "
        f"RETURNING {returning}"
    )


def returning_list(table: Table, alias: str | None = None) -> str:
    """All columns, so the representation can be shaped from the CTE like a table."""
    prefix = f"{q(alias)}." if alias else ""
    return ", ".join(f"{prefix}{q(c)}" for c in table.columns) or "1"


# ------------------------------------------------------------------------------ rpc


def call_expr(
    fn: Function, p: Params, body: str, *, single_json: bool, arg_names: list[str]
) -> tuple[str, str]:
    """(FROM-prefix, call expression): arguments come from the JSON body via json_to_record,
    so JSON arrays/objects/numbers become the parameters' types by Postgres's own rules."""
    if single_json:
        # json or jsonb, as the parameter is declared: there is no implicit cast between them
        typ = fn.args[0].type if fn.args else "json"
        return "", f"{fn.qualified}({p.add(body)}::{typ})"
    args = [a for a in fn.args if a.name in arg_names]
    if not args:
        return "", f"{fn.qualified}()"
    body_param = f"{p.add(body)}::json"
    defs = ", ".join(f"{q(a.name)} {a.type}" for a in args)  # variadic: already the array type
    call_args = ", ".join(
        ("VARIADIC " if a.variadic else "") + f"{q(a.name)} := pgrst_args.{q(a.name)}" for a in args
    )
    prefix = f"json_to_record({body_param}) AS pgrst_args({defs}), LATERAL "
    return prefix, f"{fn.qualified}({call_args})"
