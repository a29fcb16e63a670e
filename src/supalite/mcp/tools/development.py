"""Development tools: what an app needs to talk to the project — its URL and public keys."""

from __future__ import annotations

from typing import Any

from supalite.mcp.backend import BackendError, SqlPath
from supalite.mcp.tools import ToolContext, ToolFailure, ToolResult, ToolSpec, obj
from supalite.mcp.tools.database import _failure
from supalite.typegen import TypegenError, generate
from supalite.typegen.fetch import PAGE, Fetch


async def get_project_url(ctx: ToolContext, args: dict[str, Any]) -> ToolResult | ToolFailure:
    return ToolResult({"url": ctx.backend.config.url})


async def get_publishable_keys(ctx: ToolContext, args: dict[str, Any]) -> ToolResult | ToolFailure:
    # Only keys meant for browsers and apps; the service key this server holds is never shown.
    cfg = ctx.backend.config
    keys = []
    if cfg.anon_key:
        keys.append({"name": "anon", "type": "legacy", "api_key": cfg.anon_key})
    if cfg.publishable_key:
        keys.append({"name": "default", "type": "publishable", "api_key": cfg.publishable_key})
    if not keys:
        return ToolFailure(
            "no_public_key",
            "no anon or publishable key is configured (set SUPABASE_ANON_KEY or "
            "SUPABASE_PUBLISHABLE_KEY)",
        )
    return ToolResult({"keys": keys})


TOOLS = [
    ToolSpec(
        "get_project_url",
        "development",
        "The project's API URL, for SUPABASE_URL in an app's configuration.",
        obj({}),
        obj({"url": {"type": "string"}}, ["url"]),
        get_project_url,
        read_only_hint=True,
        destructive_hint=False,
        idempotent_hint=True,
        writes=False,
    ),
    ToolSpec(
        "get_publishable_keys",
        "development",
        "The project's public API keys (anon / publishable) for client apps. Never returns "
        "the service_role or secret key.",
        obj({}),
        obj(
            {
                "keys": {
                    "type": "array",
                    "items": obj(
                        {
                            "name": {"type": "string"},
                            "type": {"type": "string"},
                            "api_key": {"type": "string"},
                        },
                        ["name", "type", "api_key"],
                    ),
                }
            },
            ["keys"],
        ),
        get_publishable_keys,
        read_only_hint=True,
        destructive_hint=False,
        idempotent_hint=True,
        writes=False,
    ),
]


# ------------------------------------------------------------------ type generation


def catalog_fetch(sql: SqlPath, max_bytes: int = 8 * 1024 * 1024) -> Fetch:
    """Type generation's catalog queries over the admin SQL path, read-only.  The queries page
    themselves, so a page cut short by the caps is followed by the next one."""

    async def fetch(query: str, params: list[Any]) -> list[dict[str, Any]]:
        out = await sql.query(query, params, read_only=True, max_rows=PAGE, max_bytes=max_bytes)
        rows: list[dict[str, Any]] = out["rows"]
        if out.get("truncated") and not rows:  # a single catalog row over the byte cap
            raise TypegenError("the catalog is too large to read through the admin SQL path")
        return rows

    return fetch


async def _generate_types(
    ctx: ToolContext, args: dict[str, Any], lang: str
) -> ToolResult | ToolFailure:
    # Generated code, not row data: names reach it only as string literals (no comments from
    # the database), so it needs no untrusted-data fence.
    fetch = catalog_fetch(ctx.backend.sql)
    schemas = [str(s) for s in args.get("schemas") or ["public"]]
    try:
        source = await generate(lang, fetch, schemas)
    except BackendError as e:
        return _failure(e)
    except TypegenError as e:
        return ToolFailure("invalid_arguments", str(e))
    return ToolResult({"types": source}, source)


async def generate_typescript_types(
    ctx: ToolContext, args: dict[str, Any]
) -> ToolResult | ToolFailure:
    return await _generate_types(ctx, args, "typescript")


async def generate_python_types(ctx: ToolContext, args: dict[str, Any]) -> ToolResult | ToolFailure:
    return await _generate_types(ctx, args, "python")


_SCHEMAS_INPUT = obj(
    {
        "schemas": {
            "type": "array",
            "items": {"type": "string"},
            "description": "schemas to generate (default: public)",
        }
    }
)
TOOLS.extend(
    ToolSpec(
        f"generate_{lang}_types",
        "development",
        description,
        _SCHEMAS_INPUT,
        obj({"types": {"type": "string"}}, ["types"]),
        handler,
        read_only_hint=True,
        destructive_hint=False,
        idempotent_hint=True,
        writes=False,
        service_only=True,
    )
    for lang, handler, description in (
        (
            "typescript",
            generate_typescript_types,
            "TypeScript types for the database's tables, views, functions, enums and composite "
            "types, exactly as `supabase gen types typescript` prints them (the `Database` type "
            "for createClient<Database>, and Tables<>, TablesInsert<>, Enums<>, Constants). "
            "Use after changing the schema, to write them to the app's database.types.ts.",
        ),
        (
            "python",
            generate_python_types,
            "Python types (pydantic v2 models) for the database's tables (row, insert and "
            "update shapes), views, composite types, enums and functions, as `supalite gen "
            "types --lang python` prints them. Use to type a Python app's rows.",
        ),
    )
)
