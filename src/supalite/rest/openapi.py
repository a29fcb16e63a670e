"""The OpenAPI (Swagger 2.0) document PostgREST serves at `/rest/v1/`.

A port of PostgREST's `Response/OpenAPI.hs` under its default `openapi-mode`,
`follow-privileges`: the tables and views of the schema the role can reach at all (any table
or column privilege, or membership in the owner), with GET and — when the relation can be
written — POST, PATCH and DELETE whatever the role's grants; the functions it may execute,
except those it cannot call by name (more than one unnamed argument, or one that is not of a
type PostgREST passes a whole body as), as PostgREST lists them. Computed fields and
relationships are not in the document, as they are not in PostgREST's.

supalite answers as a PostgREST whose `openapi-server-proxy-uri` is `<api_url>/rest/v1`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg

from supalite.db.request import RequestContext, request_transaction
from supalite.db.schema_cache import Column, Relationship, SchemaCache, Table, quote_ident
from supalite.gateway import Claims
from supalite.rest.errors import ApiError
from supalite.rest.media import entries

# The PostgREST release whose document this reproduces (its `info.version`) and the docs it
# links to.
POSTGREST_VERSION = "14.17"
DOCS_URL = "https://postgrest.org/en/v14/references/api.html"

# PostgREST's `accessibleTables`: a relation is listed when the role has any privilege on it,
# on one of its columns, or belongs to its owner.
_TABLES_SQL = """
select c.relname as name
from pg_class c
where c.relkind in ('v', 'r', 'm', 'f', 'p') and c.relnamespace = to_regnamespace($1)
  and (pg_has_role(c.relowner, 'USAGE')
    or has_table_privilege(c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
    or has_any_column_privilege(c.oid, 'SELECT, INSERT, UPDATE, REFERENCES'))
  and not c.relispartition
"""

# PostgREST's `accessibleFuncs`, argument list and all: the input arguments as
# (name, type, required, variadic) — types named as the request's search_path shows them —
# and the rule that a function with an unnamed argument is only callable when it is the only
# one and of a type a whole body can be passed as.
_FUNCTIONS_SQL = """
with recursive base_types(oid, base) as (
  select oid, oid from pg_type where typbasetype = 0
  union all
  select t.oid, b.base from pg_type t join base_types b on t.typbasetype = b.oid
),
arguments as (
  select oid,
    json_agg(json_build_array(coalesce(name, ''), type::regtype::text,
      idx <= (pronargs - pronargdefaults), coalesce(mode = 'v', false)) order by idx) as args,
    case count(*) - count(name)
      when 0 then true
      when 1 then (array_agg(type))[1] in ('bytea'::regtype, 'json'::regtype,
        'jsonb'::regtype, 'text'::regtype, 'xml'::regtype)
      else false
    end as callable
  from pg_proc, unnest(proargnames, proargtypes, proargmodes)
    with ordinality as _ (name, type, mode, idx)
  where type is not null and pronamespace = to_regnamespace($1)
  group by oid
)
select p.proname as name, obj_description(p.oid, 'pg_proc') as description,
  coalesce(a.args, '[]') as args, p.provolatile::text as volatility
from pg_proc p
left join arguments a on a.oid = p.oid
join base_types bt on bt.oid = p.prorettype
where p.pronamespace = to_regnamespace($1) and bt.base <> 'trigger'::regtype
  and coalesce(a.callable, true) and has_function_privilege(p.oid, 'execute')
  and p.prokind = 'f'
"""

_SCHEMA_SQL = "select obj_description(to_regnamespace($1), 'pg_namespace')"

# Both lists name the singular media with nulls stripped first, as PostgREST does.
_MEDIA = [
    "application/json",
    "application/vnd.pgrst.object+json;nulls=stripped",
    "application/vnd.pgrst.object+json",
    "text/csv",
]
# An empty `Accept` reads as application/json here, as for every other resource (media.py).
_ACCEPTABLE = ("application/openapi+json", "application/json", "*/*", "")

# PostgREST's `toSwaggerType`: None for json and jsonb (any value).
_TYPES: dict[str, str | None] = {
    "character varying": "string",
    "character": "string",
    "text": "string",
    "boolean": "boolean",
    "smallint": "integer",
    "integer": "integer",
    "bigint": "integer",
    "numeric": "number",
    "real": "number",
    "double precision": "number",
    "json": None,
    "jsonb": None,
}
_FORMATS = {"smallint": "int32", "integer": "int32", "bigint": "int64"}


@dataclass(frozen=True)
class _Param:
    """A function's input argument as PostgREST's OpenAPI query reads it."""

    name: str
    type: str
    required: bool
    variadic: bool


@dataclass(frozen=True)
class _Routine:
    name: str
    description: str | None
    params: tuple[_Param, ...]
    volatility: str

    def overload_rank(self) -> tuple[Any, ...]:
        """PostgREST sorts overloads by their number of arguments, then description, then
        arguments, and the last one is the one its document shows."""
        return (
            len(self.params),
            self.description is not None,
            self.description or "",
            [(p.name, p.type, p.required, p.variadic) for p in self.params],
        )


def _swagger_type(pg_type: str) -> str | None:
    if pg_type in _TYPES:
        return _TYPES[pg_type]
    return "array" if pg_type.endswith("[]") else "string"


def _format(pg_type: str) -> str:
    """PostgREST's `toSwaggerFormat`: OpenAPI's integer formats, else the type's name."""
    return _FORMATS.get(pg_type, pg_type)


def _type_and_items(pg_type: str) -> dict[str, Any]:
    """`type` and, for an array, `items` with its element's type (none for json[])."""
    out: dict[str, Any] = {}
    kind = _swagger_type(pg_type)
    if kind is not None:
        out["type"] = kind
    if kind == "array":
        element = _swagger_type(pg_type[:-2])
        out["items"] = {"type": element} if element is not None else {}
    return out


def _default(pg_type: str, expression: str | None) -> tuple[bool, Any]:
    """PostgREST's `parseDefault`: a string type's literal without its cast and quotes;
    any other default shown only when the expression is itself JSON (`42`, `true`)."""
    if expression is None:
        return False, None
    text = expression
    if _swagger_type(pg_type) == "string":
        suffix = "::" + pg_type
        if text.endswith(suffix):
            text = text[: -len(suffix)].strip("'")
        text = f'"{text}"'
    try:
        return True, json.loads(text, parse_constant=_reject)
    except ValueError:
        return False, None


def _reject(name: str) -> Any:
    raise ValueError(name)  # NaN, Infinity: not JSON to PostgREST's parser


def _summary(description: str | None) -> dict[str, str]:
    """The first line of a comment as `summary`, the rest (after blank lines) as
    `description`."""
    if description is None:
        return {}
    first, _, rest = description.partition("\n")
    out = {"summary": first}
    rest = rest.lstrip("\n")
    if rest:
        out["description"] = rest
    return out


def _fk_note(column: str, rels: list[Relationship], cache: SchemaCache) -> str | None:
    """PostgREST's note on a column that is, by itself, a foreign key (a table's before a
    view's, when a view stands in for the referenced table)."""
    found = [
        r
        for r in rels
        if r.function is None
        and (r.cardinality == "m2o" or (r.cardinality == "o2o" and not r.parent))
        and r.source_columns == (column,)
    ]
    found.sort(key=lambda r: _is_view(cache, r.target))
    if not found:
        return None
    table, ref = found[0].target[1], found[0].target_columns[0]
    return f"This is a Foreign Key to `{table}.{ref}`.<fk table='{table}' column='{ref}'/>"


def _is_view(cache: SchemaCache, name: tuple[str, str]) -> bool:
    table = cache.tables.get(name)
    return table is not None and table.is_view


def _property(
    col: Column, pk: tuple[str, ...], rels: list[Relationship], cache: SchemaCache
) -> dict[str, Any]:
    pg_type = col.data_type or col.type
    prop: dict[str, Any] = {"format": _format(pg_type), **_type_and_items(pg_type)}
    has_default, default = _default(pg_type, col.default)
    if has_default:
        prop["default"] = default
    notes = ["Note:"]
    if col.name in pk:
        notes.append("This is a Primary Key.<pk/>")
    fk = _fk_note(col.name, rels, cache)
    if fk is not None:
        notes.append(fk)
    if len(notes) > 1:
        prefix = col.description + "\n\n" if col.description is not None else ""
        prop["description"] = prefix + "\n".join(notes)
    elif col.description is not None:
        prop["description"] = col.description
    if col.enum:
        prop["enum"] = list(col.enum)
    if col.max_length is not None:
        prop["maxLength"] = col.max_length
    return prop


def _definition(t: Table, cache: SchemaCache) -> dict[str, Any]:
    columns = list(t.columns.values())  # in the table's order, as the cache reads them
    pk = cache.view_pks.get((t.schema, t.name), ()) if t.is_view else t.pk
    rels = cache.rels(t.schema, t.name)
    d: dict[str, Any] = {"type": "object"}
    if t.description is not None:
        d["description"] = t.description
    if columns:
        d["properties"] = {c.name: _property(c, pk, rels, cache) for c in columns}
    required = [c.name for c in columns if not c.nullable]
    if required:
        d["required"] = required
    return d


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/{kind}/{name}"}


def _table_path(t: Table) -> dict[str, Any]:
    name = t.name
    filters = [_ref("parameters", f"rowFilter.{name}.{c}") for c in t.columns]
    base = {"tags": [name], **_summary(t.description)}
    rows = {"items": _ref("definitions", name), "type": "array"}
    item: dict[str, Any] = {
        "get": {
            **base,
            "parameters": filters
            + [
                _ref("parameters", p)
                for p in ("select", "order", "range", "rangeUnit", "offset", "limit", "preferCount")
            ],
            "responses": {
                "200": {"description": "OK", "schema": rows},
                "206": {"description": "Partial Content"},
            },
        }
    }
    if t.insertable or t.updatable or t.deletable:
        body = _ref("parameters", f"body.{name}")
        item["post"] = {
            **base,
            "parameters": [body, _ref("parameters", "select"), _ref("parameters", "preferPost")],
            "responses": {"201": {"description": "Created"}},
        }
        item["patch"] = {
            **base,
            "parameters": [*filters, body, _ref("parameters", "preferReturn")],
            "responses": {"204": {"description": "No Content"}},
        }
        item["delete"] = {
            **base,
            "parameters": [*filters, _ref("parameters", "preferReturn")],
            "responses": {"204": {"description": "No Content"}},
        }
    return item


def _rpc_get_param(p: _Param) -> dict[str, Any]:
    out: dict[str, Any] = {"name": p.name, "required": p.required, "in": "query"}
    kind = _swagger_type(p.type)
    if p.variadic:  # `?v=a&v=b`
        element = p.type[:-2] if p.type.endswith("[]") else p.type
        items: dict[str, Any] = {"format": _format(element)}
        element_kind = _swagger_type(element)
        if element_kind is not None:
            items["type"] = element_kind
        out.update(type=kind or "string", items=items, collectionFormat="multi")
    else:  # arrays are `{a,b}` literals in a query string
        out.update(
            format=_format(p.type),
            type=kind if kind not in (None, "array") else "string",
        )
    return out


def _rpc_path(fn: _Routine) -> dict[str, Any]:
    properties = {p.name: {"format": _format(p.type), **_type_and_items(p.type)} for p in fn.params}
    schema: dict[str, Any] = {"type": "object"}
    if fn.description is not None:
        schema["description"] = fn.description
    if properties:
        schema["properties"] = properties
    required = [p.name for p in fn.params if p.required]
    if required:
        schema["required"] = required
    base = {
        "tags": [f"(rpc) {fn.name}"],
        **_summary(fn.description),
        "produces": _MEDIA[:3],
        "responses": {"200": {"description": "OK"}},
    }
    args = {"name": "args", "required": True, "in": "body", "schema": schema}
    item: dict[str, Any] = {}
    if fn.volatility != "v":  # volatile functions are only called by POST
        item["get"] = {**base, "parameters": [_rpc_get_param(p) for p in fn.params]}
    item["post"] = {**base, "parameters": [args, _ref("parameters", "preferParams")]}
    return item


def _prefer(values: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": "Prefer",
        "description": "Preference",
        "required": False,
        "in": "header",
        "type": "string",
    }
    if values:
        out["enum"] = values
    return out


def _plain(name: str, description: str | None, where: str = "query") -> dict[str, Any]:
    """A string parameter, optional, in the query string or a header."""
    out: dict[str, Any] = {"name": name}
    if description is not None:
        out["description"] = description
    return {**out, "required": False, "in": where, "type": "string"}


def _parameters(tables: Iterable[Table]) -> dict[str, Any]:
    ret = ["return=representation", "return=minimal", "return=none"]
    paging = "Limiting and Pagination"
    params: dict[str, Any] = {
        "preferParams": _prefer([]),
        "preferReturn": _prefer(ret),
        "preferCount": _prefer(["count=none"]),
        "preferPost": _prefer(
            [*ret, "resolution=ignore-duplicates", "resolution=merge-duplicates"]
        ),
        "select": _plain("select", "Filtering Columns"),
        "on_conflict": _plain("on_conflict", "On Conflict"),
        "order": _plain("order", "Ordering"),
        "range": _plain("Range", paging, "header"),
        "rangeUnit": {**_plain("Range-Unit", paging, "header"), "default": "items"},
        "offset": _plain("offset", paging),
        "limit": _plain("limit", paging),
    }
    for t in tables:
        params[f"body.{t.name}"] = {
            "name": t.name,
            "description": t.name,
            "required": False,
            "in": "body",
            "schema": _ref("definitions", t.name),
        }
        for c in t.columns.values():
            params[f"rowFilter.{t.name}.{c.name}"] = _plain(c.name, c.description)
    return params


def _info(comment: str | None) -> dict[str, str]:
    """The schema's comment: first line the title, the rest the description."""
    if comment is None:
        title, description = "PostgREST API", "This is a dynamic API generated by PostgREST"
    else:
        title, _, rest = comment.partition("\n")
        description = rest.lstrip("\n")
    return {"description": description, "title": title, "version": POSTGREST_VERSION}


def _server(api_url: str) -> tuple[str, str, str]:
    """(scheme, host:port, base path) of the Data API's URL, the port written out as
    PostgREST writes it."""
    scheme, _, rest = api_url.partition("://")
    authority, slash, path = rest.partition("/")
    base_path = (slash + path).rstrip("/") + "/rest/v1"
    host, port = authority, "443" if scheme == "https" else "80"
    if authority.startswith("["):  # an IPv6 literal keeps its brackets
        end = authority.find("]")
        host, tail = authority[: end + 1], authority[end + 1 :]
        port = tail[1:] if tail.startswith(":") else port
    elif ":" in authority:
        host, port = authority.rsplit(":", 1)
    return scheme, f"{host}:{port}", base_path


def check_accept(accept: str | None) -> None:
    """PGRST107 (406) unless `Accept` admits the OpenAPI document (`application/openapi+json`,
    `application/json` or `*/*`, as PostgREST's `inspectPlan`)."""
    if accept is None:
        return
    found = entries(accept)
    if any(mt in _ACCEPTABLE for mt, _ in found):
        return
    names = ", ".join(name for _, name in found)
    raise ApiError(406, "PGRST107", f"None of these media types are available: {names}")


async def _catalog(
    conn: asyncpg.Connection, schema: str
) -> tuple[set[str], list[_Routine], str | None]:
    tables = {r["name"] for r in await conn.fetch(_TABLES_SQL, schema)}
    routines: dict[str, _Routine] = {}
    for r in await conn.fetch(_FUNCTIONS_SQL, schema):
        params = tuple(_Param(*a) for a in json.loads(r["args"]))
        fn = _Routine(r["name"], r["description"], params, r["volatility"])
        seen = routines.get(fn.name)
        if seen is None or fn.overload_rank() > seen.overload_rank():
            routines[fn.name] = fn
    comment = await conn.fetchval(_SCHEMA_SQL, schema)
    return tables, sorted(routines.values(), key=lambda f: f.name), comment


async def openapi_document(state: Any, claims: Claims, schema: str) -> dict[str, Any]:
    settings = state.runtime.settings
    cache: SchemaCache = state.schema.current
    search_path = ", ".join(quote_ident(s) for s in (schema, *settings.api.extra_search_path))
    ctx = RequestContext(
        role=claims.role,
        claims_json=claims.claims_json,
        method="GET",
        path="/rest/v1/",
        search_path=search_path,
        read_only=True,
    )
    async with request_transaction(state.pools.api, ctx) as conn:
        reachable, routines, comment = await _catalog(conn, schema)
    tables = [t for (s, n), t in sorted(cache.tables.items()) if s == schema and n in reachable]
    paths: dict[str, Any] = {
        "/": {
            "get": {
                "tags": ["Introspection"],
                "summary": "OpenAPI description (this document)",
                "produces": ["application/openapi+json", "application/json"],
                "responses": {"200": {"description": "OK"}},
            }
        },
    }
    paths.update((f"/{t.name}", _table_path(t)) for t in tables)
    paths.update((f"/rpc/{fn.name}", _rpc_path(fn)) for fn in routines)
    scheme, host, base_path = _server(settings.api_url)
    doc: dict[str, Any] = {
        "swagger": "2.0",
        "info": _info(comment),
        "externalDocs": {"description": "PostgREST Documentation", "url": DOCS_URL},
        "host": host,
        "basePath": base_path,
        "schemes": [scheme],
        "consumes": _MEDIA,
        "produces": _MEDIA,
        "paths": paths,
        "parameters": _parameters(tables),
    }
    if tables:
        doc["definitions"] = {t.name: _definition(t, cache) for t in tables}
    return doc
