"""The OpenAPI document PostgREST serves at `/rest/v1/` (Swagger 2.0, as PostgREST's),
listing only what the caller's role can reach."""

from __future__ import annotations

from typing import Any

from supalite import __version__
from supalite.db.request import RequestContext, request_transaction
from supalite.db.schema_cache import Column, Table
from supalite.gateway import Claims

_PRIVILEGES_SQL = """
select n.nspname as schema, c.relname as name,
  has_table_privilege(c.oid, 'SELECT') as sel, has_table_privilege(c.oid, 'INSERT') as ins,
  has_table_privilege(c.oid, 'UPDATE') as upd, has_table_privilege(c.oid, 'DELETE') as del
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = $1 and c.relkind in ('r', 'p', 'v', 'm', 'f')
"""
_FUNCTIONS_SQL = """
select p.proname as name from pg_proc p join pg_namespace n on n.oid = p.pronamespace
where n.nspname = $1 and has_function_privilege(p.oid, 'EXECUTE')
"""

_FORMATS = {
    "int2": ("integer", "smallint"),
    "int4": ("integer", "integer"),
    "int8": ("integer", "bigint"),
    "float4": ("number", "real"),
    "float8": ("number", "double precision"),
    "numeric": ("number", "numeric"),
    "bool": ("boolean", "boolean"),
    "json": ("object", "json"),
    "jsonb": ("object", "jsonb"),
}


def _property(col: Column) -> dict[str, Any]:
    kind, fmt = _FORMATS.get(col.base_type, ("string", col.type))
    prop: dict[str, Any] = {
        "format": col.type,
        "type": "array" if col.category == "A" else kind,
    }
    if col.category == "A":
        prop["items"] = {"type": kind}
    elif fmt != col.type:
        prop["format"] = col.type
    if col.enum:
        prop["enum"] = list(col.enum)
    if col.max_length:
        prop["maxLength"] = col.max_length
    if col.description:
        prop["description"] = col.description
    return prop


def _definition(t: Table) -> dict[str, Any]:
    d: dict[str, Any] = {
        "properties": {c.name: _property(c) for c in t.columns.values()},
        "type": "object",
    }
    required = [c.name for c in t.columns.values() if not c.nullable and not c.has_default]
    if required:
        d["required"] = required
    if t.description:
        d["description"] = t.description
    return d


async def openapi_document(state: Any, claims: Claims) -> dict[str, Any]:
    settings = state.runtime.settings
    schema = settings.api.schemas[0]
    cache = state.schema.current
    ctx = RequestContext(
        role=claims.role,
        claims_json=claims.claims_json,
        method="GET",
        path="/rest/v1/",
        read_only=True,
    )
    async with request_transaction(state.pools.api, ctx) as conn:
        privileges = {r["name"]: r for r in await conn.fetch(_PRIVILEGES_SQL, schema)}
        callable_fns = {r["name"] for r in await conn.fetch(_FUNCTIONS_SQL, schema)}
    paths: dict[str, Any] = {
        "/": {
            "get": {
                "produces": ["application/openapi+json", "application/json"],
                "responses": {"200": {"description": "OK"}},
                "summary": "OpenAPI description (this document)",
                "tags": ["Introspection"],
            }
        },
    }
    definitions: dict[str, Any] = {}
    for (s, name), table in sorted(cache.tables.items()):
        priv = privileges.get(name)
        if (
            s != schema
            or priv is None
            or not (priv["sel"] or priv["ins"] or priv["upd"] or priv["del"])
        ):
            continue
        ops: dict[str, Any] = {}
        ref = {"$ref": f"#/definitions/{name}"}
        ok = {"description": "OK", "schema": {"items": ref, "type": "array"}}
        if priv["sel"]:
            ops["get"] = {
                "tags": [name],
                "responses": {"200": ok, "206": {"description": "Partial Content"}},
            }
        if priv["ins"]:
            ops["post"] = {"tags": [name], "responses": {"201": {"description": "Created"}}}
        if priv["upd"]:
            ops["patch"] = {"tags": [name], "responses": {"204": {"description": "No Content"}}}
        if priv["del"]:
            ops["delete"] = {"tags": [name], "responses": {"204": {"description": "No Content"}}}
        paths[f"/{name}"] = ops
        definitions[name] = _definition(table)
    for (s, name), fns in sorted(cache.functions.items()):
        if s != schema or name not in callable_fns:
            continue
        fn = fns[0]
        props = {
            a.name: {"format": a.type, "type": _FORMATS.get(a.type, ("string",))[0]}
            for a in fn.args
            if a.name
        }
        body = {
            "in": "body",
            "name": "args",
            "required": True,
            "schema": {"properties": props, "type": "object"},
        }
        ops = {
            "post": {
                "tags": ["(rpc) " + name],
                "parameters": [body],
                "responses": {"200": {"description": "OK"}},
            }
        }
        if fn.volatility != "v":
            ops["get"] = {"tags": ["(rpc) " + name], "responses": {"200": {"description": "OK"}}}
        paths[f"/rpc/{name}"] = ops
    host = settings.api_url.split("://", 1)[1]
    return {
        "swagger": "2.0",
        "info": {"description": "", "title": "standard public schema", "version": __version__},
        "host": host,
        "basePath": "/rest/v1",
        "schemes": [settings.api_url.split("://", 1)[0]],
        "consumes": ["application/json", "application/vnd.pgrst.object+json", "text/csv"],
        "produces": ["application/json", "application/vnd.pgrst.object+json", "text/csv"],
        "paths": paths,
        "definitions": definitions,
        "parameters": {},
    }
