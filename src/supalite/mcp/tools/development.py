"""Development tools: what an app needs to talk to the project — its URL and public keys."""

from __future__ import annotations

from typing import Any

from supalite.mcp.tools import ToolContext, ToolFailure, ToolResult, ToolSpec, obj


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
