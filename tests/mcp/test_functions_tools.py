"""The functions tools: deploy → invoke → redeploy → the new version served, over stdio and
HTTP; user mode in-process (invoke carries the user's token; the admin tools are refused)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import jwt

from supalite.mcp.backend import Backend, BackendConfig
from supalite.mcp.safety import Confirmations
from supalite.mcp.tools import Options, ToolContext, ToolFailure, ToolResult
from supalite.mcp.tools import functions as fn_tools
from tests.mcp.conftest import INJECTION, Project, call, fail, http_session, stdio_session

SOURCE = """
import os

async def handler(request):
    body = await request.body()
    return {{
        "version": {version!r},
        "method": request.method,
        "path": request.url.path,
        "query": dict(request.query_params),
        "body": body.decode(),
        "authorization": request.headers.get("authorization"),
        "x_extra": request.headers.get("x-extra"),
        "note": {note!r},
    }}
"""


def _files(version: str, note: str = "") -> list[dict[str, str]]:
    return [{"name": "main.py", "content": SOURCE.format(version=version, note=note)}]


def _delete(live: Project, slug: str) -> int:
    key = live.server.service_key
    r = httpx.delete(
        f"{live.url}/admin/v1/functions/{slug}",
        timeout=30,
        headers={"apikey": key, "Authorization": f"Bearer {key}"},
    )
    return r.status_code


async def _lifecycle(session: Any, slug: str) -> None:
    out = await call(
        session,
        "deploy_edge_function",
        {"name": slug, "files": _files("one", INJECTION), "verify_jwt": False},
    )
    assert out["slug"] == slug and out["version"] == 1 and out["entrypoint_path"] == "main.py"

    res = await session.call_tool(
        "invoke_edge_function",
        {
            "name": slug,
            "body": {"hello": "world"},
            "path": "/sub?x=1",
            "headers": {"x-extra": "yes", "Authorization": "Bearer forged"},
        },
    )
    assert not res.is_error
    got = res.structured_content
    assert got["status"] == 200 and got["truncated"] is False
    body = got["body"]
    assert body["version"] == "one" and body["method"] == "POST"
    assert body["path"] == f"/{slug}/sub" and body["query"] == {"x": "1"}
    assert json.loads(body["body"]) == {"hello": "world"} and body["x_extra"] == "yes"
    assert body["authorization"] != "Bearer forged"  # the session's identity, not the agent's
    # The response is fenced as untrusted data, in the text too.
    text = "".join(getattr(c, "text", "") for c in res.content)
    b = got["boundary"]
    assert text.index(f"<untrusted-data-{b}>") < text.index("IGNORE ALL PREVIOUS")
    assert text.index("IGNORE ALL PREVIOUS") < text.index(f"</untrusted-data-{b}>")

    listed = await call(session, "list_edge_functions")
    mine = [r for r in listed["rows"] if r["slug"] == slug]
    assert len(mine) == 1 and mine[0]["version"] == 1 and listed["boundary"]

    got = await call(session, "get_edge_function", {"function_slug": slug})
    assert got["files"] == _files("one", INJECTION) and got["truncated"] is False
    assert got["version"] == 1 and got["boundary"]

    out = await call(session, "deploy_edge_function", {"name": slug, "files": _files("two")})
    assert out["version"] == 2 and out["verify_jwt"] is True
    again = await call(session, "invoke_edge_function", {"name": slug, "method": "GET"})
    assert again["body"]["version"] == "two" and again["body"]["method"] == "GET"


async def _bad_input(session: Any) -> None:
    text = await fail(
        session,
        "deploy_edge_function",
        {
            "name": "evil",
            "files": [{"name": "../../etc/x.py", "content": ""}],
        },
    )
    assert "leaves the function" in text
    text = await fail(
        session,
        "deploy_edge_function",
        {"name": "evil", "files": _files("x"), "entrypoint_path": "index.ts"},
    )
    assert "is not one of the files" in text
    text = await fail(session, "deploy_edge_function", {"name": "../x", "files": _files("x")})
    assert "invalid function name" in text
    text = await fail(session, "get_edge_function", {"function_slug": "no-such-fn"})
    assert "404" in text and "not found" in text
    text = await fail(session, "invoke_edge_function", {"name": "no-such-fn"})
    assert "FunctionsHttpError" in text and "404" in text and "Function not found" in text
    text = await fail(session, "invoke_edge_function", {"name": "a/../b"})
    assert "invalid function name" in text
    text = await fail(session, "invoke_edge_function", {"name": "evil", "path": "/../../rest/v1/x"})
    assert "path must start with /" in text
    text = await fail(
        session, "invoke_edge_function", {"name": "evil", "method": "GET", "body": "x"}
    )
    assert "GET call has no body" in text


async def test_functions_tools_over_stdio(live: Project) -> None:
    try:
        async with stdio_session(live.root) as s:
            await _lifecycle(s, "mcp-stdio")
            await _bad_input(s)
    finally:
        assert _delete(live, "mcp-stdio") == 200
    assert _delete(live, "evil") == 404  # nothing of the bad deploys was stored


async def test_functions_tools_over_http(live: Project) -> None:
    try:
        async with http_session(live.url, live.server.service_key) as s:
            await _lifecycle(s, "mcp-http")
            await _bad_input(s)
    finally:
        assert _delete(live, "mcp-http") == 200


def _user_token(live: Project) -> str:
    now = int(time.time())
    claims = {
        "sub": "00000000-0000-0000-0000-00000000000a",
        "role": "authenticated",
        "aud": "authenticated",
        "iat": now,
        "exp": now + 600,
    }
    return jwt.encode(claims, live.server.info["JWT secret"], algorithm="HS256")


async def test_user_mode_invokes_as_the_user_and_cannot_deploy(live: Project) -> None:
    service = Backend(
        BackendConfig(live.url, live.server.service_key, anon_key=live.server.info["anon key"])
    )
    token = _user_token(live)
    user = ToolContext(service.as_user(token), Options(), Confirmations())
    admin = ToolContext(service, Options(max_bytes=200), Confirmations())
    try:
        out = await fn_tools.deploy_edge_function(
            admin, {"name": "mcp-user", "files": _files("u", "y" * 1000)}
        )
        assert isinstance(out, ToolResult) and out.structured["verify_jwt"] is True
        res = await fn_tools.invoke_edge_function(user, {"name": "mcp-user"})
        assert isinstance(res, ToolResult), res
        assert res.structured["body"]["authorization"] == f"Bearer {token}"
        # The answer is capped at --max-bytes, and says so.
        capped = await fn_tools.invoke_edge_function(admin, {"name": "mcp-user"})
        assert isinstance(capped, ToolResult)
        assert capped.structured["truncated"] is True and len(capped.structured["body"]) <= 200
        assert capped.structured["size"] > 1000
        small = await fn_tools.get_edge_function(admin, {"function_slug": "mcp-user"})
        assert isinstance(small, ToolResult) and small.structured["truncated"] is True
        assert small.structured["files"][0]["truncated"] is True
        # The admin API itself refuses a user's token (the tools are also hidden in user mode).
        for tool, args in (
            (fn_tools.list_edge_functions, {}),
            (fn_tools.get_edge_function, {"function_slug": "mcp-user"}),
            (fn_tools.deploy_edge_function, {"name": "mcp-user", "files": _files("hijack")}),
        ):
            refused = await tool(user, args)
            assert isinstance(refused, ToolFailure) and "service_role" in refused.message
        again = await fn_tools.invoke_edge_function(user, {"name": "mcp-user"})
        assert isinstance(again, ToolResult) and again.structured["body"]["version"] == "u"
    finally:
        await service.aclose()
        assert _delete(live, "mcp-user") == 200
