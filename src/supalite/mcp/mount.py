"""`/mcp` on a running supalite: the MCP server over streamable HTTP, in the same process.

The server stays a client of the public APIs — its requests go through the app itself (an
in-process ASGI transport, so no socket and no dependence on which address the server binds)
with the project's service key, and pass the same gateway as any other client's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from supalite.gateway import Gateway, GatewayError
from supalite.mcp.backend import Backend, BackendConfig
from supalite.mcp.identity import Identities, project_store
from supalite.mcp.server import HttpCaller, McpHttp, build_server, select_tools
from supalite.mcp.tools import Options
from supalite.runtime import Runtime


def authorizer(gateway: Gateway) -> Any:
    def authorize(headers: Mapping[str, str]) -> HttpCaller:
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if (
            scheme.lower() == "bearer"
            and value.strip().startswith("sb_")
            and "apikey" not in headers
        ):
            # MCP clients send one bearer token; a new-format secret key there means the key.
            headers = {**headers, "apikey": value.strip()}
        try:
            claims = gateway.authenticate(headers, None, require_apikey=False)
        except GatewayError as e:
            return HttpCaller(False, 401, e.message)
        if claims.token is None:
            return HttpCaller(
                False,
                401,
                "send the service_role key (service mode), or a user's access token or the "
                "anon key (user mode), as Bearer token",
            )
        if claims.role == "service_role":
            return HttpCaller(True, role=claims.role)
        # A user's access token, or the anon key (an agent that will sign in with the auth
        # tools): user mode from the start, RLS applied; the token passes the gateway again on
        # every request the tools make.
        return HttpCaller(True, token=claims.token, role=claims.role)

    return authorize


def build_mcp_http(runtime: Runtime, app: Any, gateway: Gateway) -> McpHttp:
    keys = runtime.keys
    config = BackendConfig(
        url=runtime.settings.api_url,
        service_key=keys.service_role_key,
        anon_key=keys.anon_key,
        publishable_key=keys.publishable_key,
    )
    backend = Backend(config, transport=httpx.ASGITransport(app=app))
    store = project_store(runtime.admin_url, keys.jwt_secret)
    identities = Identities(backend, store)
    servers = {
        ro: build_server(backend, Options(read_only=ro), select_tools(read_only=ro), identities)
        for ro in (False, True)
    }
    return McpHttp(servers, authorizer(gateway), store)


class McpEndpoint:
    """The `/mcp` route: forwards to the app's `McpHttp`, built after the app itself (its
    backend needs the app to call)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await scope["app"].state.mcp(scope, receive, send)
