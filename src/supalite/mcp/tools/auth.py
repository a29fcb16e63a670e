"""Auth tools: sign a user in for this MCP session (user mode), and the admin user API.

After a sign-in every data, storage, realtime and function tool runs with the user's token,
so RLS applies to the agent exactly as to the app, and the admin tools disappear.  The tokens
stay with the server (in the MCP session store, see identity.py): no tool returns them, so an
agent cannot leak what it never saw.  Users' metadata is user-written text, so user objects
travel inside the untrusted-data boundary.
"""

from __future__ import annotations

import functools
from typing import Any

from supalite.mcp.backend import BackendError
from supalite.mcp.identity import SignedIn, SignInExpired
from supalite.mcp.tools import (
    ROWS_OUTPUT,
    ToolContext,
    ToolFailure,
    ToolResult,
    cap_rows,
    obj,
    rows_result,
    tool_spec,
)

_EMAIL = {"type": "string", "format": "email", "maxLength": 320}
_PASSWORD = {"type": "string", "minLength": 1, "maxLength": 1024}
_METADATA = {"type": "object", "description": "user_metadata (the user can change it)"}
_UUID = {"type": "string", "pattern": "^[0-9a-fA-F-]{36}$", "description": "the user's id"}

SESSION_OUTPUT = obj(
    {
        "signed_in": {"type": "boolean"},
        "user_id": {"type": ["string", "null"]},
        "email": {"type": ["string", "null"]},
        "role": {"type": ["string", "null"]},
        "expires_at": {"type": ["integer", "null"]},
        "note": {"type": "string"},
    },
    ["signed_in"],
)


def _failure(e: BackendError) -> ToolFailure:
    return ToolFailure(e.code, e.message)


def _session_answer(signed: SignedIn | None, note: str) -> ToolResult:
    user = signed.user if signed else {}
    return ToolResult(
        {
            "signed_in": signed is not None,
            "user_id": user.get("id"),
            "email": user.get("email"),
            "role": user.get("role"),
            "expires_at": signed.expires_at if signed else None,
            "note": note,
        }
    )


async def _sign_in(ctx: ToolContext, tokens: dict[str, Any]) -> ToolResult | ToolFailure:
    """Keep the tokens of a GoTrue session answer for this MCP session."""
    scope = ctx.session
    if scope is None or scope.identities is None or scope.session_id is None:
        return ToolFailure(
            "no_session",
            "this MCP connection keeps no session, so there is nothing to sign in to: connect "
            "with a client that keeps the Mcp-Session-Id, or send the user's access token as "
            "the Bearer token",
        )
    signed = SignedIn.from_tokens(tokens)
    await scope.identities.remember(scope.session_id, signed)
    if scope.tools_changed is not None:
        await scope.tools_changed()
    return _session_answer(
        signed,
        "Signed in: every data, storage, realtime and function tool now acts as this user "
        "(RLS applies); admin tools are hidden until auth_sign_out.",
    )


async def _auth(
    ctx: ToolContext, method: str, path: str, body: Any = None, params: Any = None
) -> Any:
    """An Auth call with the public key: what an app's client sends before anyone signs in."""
    data, _ = await ctx.backend.as_anon().call(
        method, "/auth/v1" + path, params=params, json_body=body
    )
    return data


async def sign_up(ctx: ToolContext, args: dict[str, Any]) -> ToolResult | ToolFailure:
    options = args.get("options") or {}
    body: dict[str, Any] = {"email": args["email"], "password": args["password"]}
    if "data" in options:
        body["data"] = options["data"]
    params = {"redirect_to": options["emailRedirectTo"]} if options.get("emailRedirectTo") else None
    try:
        data = await _auth(ctx, "POST", "/signup", body, params)
    except BackendError as e:
        return _failure(e)
    if isinstance(data, dict) and data.get("access_token"):
        return await _sign_in(ctx, data)
    return _session_answer(
        None,
        "Signed up; the address must be confirmed (a confirmation email was sent) before "
        "signing in.",
    )


async def sign_in_with_password(ctx: ToolContext, args: dict[str, Any]) -> ToolResult | ToolFailure:
    body = {"email": args["email"], "password": args["password"]}
    try:
        data = await _auth(ctx, "POST", "/token", body, {"grant_type": "password"})
    except BackendError as e:
        return _failure(e)
    return await _sign_in(ctx, data)


async def sign_in_with_otp(ctx: ToolContext, args: dict[str, Any]) -> ToolResult | ToolFailure:
    options = args.get("options") or {}
    body: dict[str, Any] = {
        "email": args["email"],
        "create_user": options.get("shouldCreateUser", True),
    }
    if "data" in options:
        body["data"] = options["data"]
    params = {"redirect_to": options["emailRedirectTo"]} if options.get("emailRedirectTo") else None
    try:
        await _auth(ctx, "POST", "/otp", body, params)
    except BackendError as e:
        return _failure(e)
    return ToolResult(
        {
            "sent": True,
            "note": "A one-time code was emailed; ask the user for it, then call "
            "auth_verify_otp with the email and the code.",
        }
    )


async def verify_otp(ctx: ToolContext, args: dict[str, Any]) -> ToolResult | ToolFailure:
    body = {"email": args["email"], "token": args["token"], "type": args.get("type", "email")}
    try:
        data = await _auth(ctx, "POST", "/verify", body)
    except BackendError as e:
        return _failure(e)
    return await _sign_in(ctx, data)


async def get_session(ctx: ToolContext, args: dict[str, Any]) -> ToolResult | ToolFailure:
    scope = ctx.session
    signed = None
    if scope is not None and scope.identities is not None and scope.session_id is not None:
        try:
            signed = await scope.identities.current(scope.session_id)
        except SignInExpired as e:
            return _session_answer(None, e.message)
    if signed is None:
        mode = "a user's token sent by the client" if ctx.backend.user_mode else "service role"
        return _session_answer(None, f"No user signed in with the auth tools; acting as: {mode}.")
    return _session_answer(signed, "The tokens are kept by the server and refreshed as needed.")


async def get_user(ctx: ToolContext, args: dict[str, Any]) -> ToolResult | ToolFailure:
    if not ctx.backend.user_mode:
        return ToolFailure("no_user", "no user is signed in (acting as the service role)")
    try:
        data, _ = await ctx.backend.call("GET", "/auth/v1/user")
    except BackendError as e:
        return _failure(e)
    return rows_result("user", [data], False, None)


async def update_user(ctx: ToolContext, args: dict[str, Any]) -> ToolResult | ToolFailure:
    if not ctx.backend.user_mode:
        return ToolFailure("no_user", "no user is signed in (use auth_admin_update_user)")
    body = {k: args[k] for k in ("data", "email", "password") if k in args}
    if not body:
        return ToolFailure("invalid_arguments", "give at least one of data, email, password")
    try:
        data, _ = await ctx.backend.call("PUT", "/auth/v1/user", json_body=body)
    except BackendError as e:
        return _failure(e)
    return rows_result("user", [data], False, None)


async def sign_out(ctx: ToolContext, args: dict[str, Any]) -> ToolResult | ToolFailure:
    scope = ctx.session
    if scope is None or scope.identities is None or scope.session_id is None:
        return ToolFailure("no_session", "this MCP connection keeps no session")
    try:
        signed, ended = await scope.identities.peek(scope.session_id), False
    except SignInExpired:
        signed, ended = None, True
    if signed is None and not ended:
        return _session_answer(None, "No user was signed in with the auth tools.")
    if signed is not None:
        try:  # revoke the refresh tokens at the server, as supabase-js's signOut does
            scope_param = {"scope": args.get("scope", "local")}
            await ctx.backend.as_user(signed.access_token).call(
                "POST", "/auth/v1/logout", params=scope_param
            )
        except BackendError as e:
            if e.status not in (401, 403, 404):  # an already-dead session is signed out anyway
                return _failure(e)
    await scope.identities.forget(scope.session_id)
    if scope.tools_changed is not None:
        await scope.tools_changed()
    return _session_answer(None, "Signed out; the session acts as it did before signing in.")


# ------------------------------------------------------------------ admin (service role)


async def admin_list_users(ctx: ToolContext, args: dict[str, Any]) -> ToolResult | ToolFailure:
    page, per_page = args.get("page", 1), args.get("per_page", 50)
    try:
        data, headers = await ctx.backend.call(
            "GET", "/auth/v1/admin/users", params={"page": page, "per_page": per_page}
        )
    except BackendError as e:
        return _failure(e)
    users = data.get("users", []) if isinstance(data, dict) else []
    shown, truncated = cap_rows(users, ctx.options.max_rows, ctx.options.max_bytes)
    total = int(headers.get("x-total-count") or len(users))
    note = None
    if truncated or page * per_page < total:
        note = f"{total} users in all: ask for page {page + 1} (per_page ≤ {len(shown) or 1})."
    return rows_result("users", shown, truncated, note, total=total, page=page)


async def admin_get_user(ctx: ToolContext, args: dict[str, Any]) -> ToolResult | ToolFailure:
    try:
        data, _ = await ctx.backend.call("GET", f"/auth/v1/admin/users/{args['id']}")
    except BackendError as e:
        return _failure(e)
    return rows_result("user", [data], False, None)


_ADMIN_ATTRS = (
    "email", "password", "phone", "email_confirm", "phone_confirm", "user_metadata",
    "app_metadata", "role", "ban_duration",
)  # fmt: skip


async def admin_create_user(ctx: ToolContext, args: dict[str, Any]) -> ToolResult | ToolFailure:
    body = {k: args[k] for k in _ADMIN_ATTRS if k in args}
    try:
        data, _ = await ctx.backend.call("POST", "/auth/v1/admin/users", json_body=body)
    except BackendError as e:
        return _failure(e)
    return rows_result("user", [data], False, None)


async def admin_update_user(ctx: ToolContext, args: dict[str, Any]) -> ToolResult | ToolFailure:
    body = {k: args[k] for k in _ADMIN_ATTRS if k in args}
    if not body:
        return ToolFailure("invalid_arguments", "give at least one attribute to change")
    try:
        data, _ = await ctx.backend.call(
            "PUT", f"/auth/v1/admin/users/{args['id']}", json_body=body
        )
    except BackendError as e:
        return _failure(e)
    return rows_result("user", [data], False, None)


async def admin_delete_user(ctx: ToolContext, args: dict[str, Any]) -> ToolResult | ToolFailure:
    soft = bool(args.get("should_soft_delete", False))
    try:
        await ctx.backend.call(
            "DELETE", f"/auth/v1/admin/users/{args['id']}", json_body={"should_soft_delete": soft}
        )
    except BackendError as e:
        return _failure(e)
    return ToolResult({"deleted": True, "id": args["id"], "soft": soft})


async def admin_generate_link(ctx: ToolContext, args: dict[str, Any]) -> ToolResult | ToolFailure:
    fields = ("type", "email", "password", "new_email", "data", "redirect_to")
    body = {k: args[k] for k in fields if k in args}
    try:
        data, _ = await ctx.backend.call("POST", "/auth/v1/admin/generate_link", json_body=body)
    except BackendError as e:
        return _failure(e)
    props = data.get("properties", data) if isinstance(data, dict) else {}
    return ToolResult(
        {
            "action_link": props.get("action_link"),
            "email_otp": props.get("email_otp"),
            "hashed_token": props.get("hashed_token"),
            "verification_type": props.get("verification_type"),
            "redirect_to": props.get("redirect_to"),
            "user_id": (data.get("id") if isinstance(data, dict) else None),
        }
    )


_OTP_TYPES = ["email", "signup", "invite", "magiclink", "recovery", "email_change"]
_LINK_TYPES = [
    "signup", "invite", "magiclink", "recovery", "email_change_current", "email_change_new",
]  # fmt: skip
_REDIRECT = {"type": "string", "maxLength": 2048}
_USER_ATTRS = {
    "email": _EMAIL,
    "password": _PASSWORD,
    "phone": {"type": "string", "maxLength": 32},
    "email_confirm": {"type": "boolean", "description": "mark the email confirmed"},
    "phone_confirm": {"type": "boolean"},
    "user_metadata": {"type": "object"},
    "app_metadata": {"type": "object", "description": "server-controlled (e.g. roles, plans)"},
    "role": {"type": "string", "maxLength": 63, "description": "the database role in the JWT"},
    "ban_duration": {
        "type": "string",
        "maxLength": 32,
        "description": "Go duration (e.g. 24h, 1h30m) or 'none' to lift a ban",
    },
}
_ACTION_OUTPUT = obj({"sent": {"type": "boolean"}, "note": {"type": "string"}}, ["sent"])
_DELETED_OUTPUT = obj(
    {"deleted": {"type": "boolean"}, "id": {"type": "string"}, "soft": {"type": "boolean"}},
    ["deleted", "id"],
)
_LINK_FIELDS = (
    "action_link", "email_otp", "hashed_token", "verification_type", "redirect_to", "user_id",
)  # fmt: skip
_LINK_OUTPUT = obj({k: {"type": ["string", "null"]} for k in _LINK_FIELDS}, ["action_link"])


_spec = functools.partial(tool_spec, group="auth")


# Signing in changes only who this session is, not the project: listed in read-only mode too.
TOOLS = [
    _spec(
        "auth_sign_up",
        "Create a user with email and password (as the app's sign-up form does). When the "
        "project confirms addresses automatically the session is signed in as the new user.",
        obj(
            {
                "email": _EMAIL,
                "password": _PASSWORD,
                "options": obj({"data": _METADATA, "emailRedirectTo": _REDIRECT}),
            },
            ["email", "password"],
        ),
        SESSION_OUTPUT,
        sign_up,
    ),
    _spec(
        "auth_sign_in_with_password",
        "Sign this MCP session in as a user: afterwards data, storage, realtime and function "
        "tools act as that user under RLS (use it to test policies as a user would meet them).",
        obj({"email": _EMAIL, "password": _PASSWORD}, ["email", "password"]),
        SESSION_OUTPUT,
        sign_in_with_password,
        writes=False,
    ),
    _spec(
        "auth_sign_in_with_otp",
        "Email a one-time code (and magic link) to a user; then auth_verify_otp with the code.",
        obj(
            {
                "email": _EMAIL,
                "options": obj(
                    {
                        "shouldCreateUser": {"type": "boolean", "default": True},
                        "data": _METADATA,
                        "emailRedirectTo": _REDIRECT,
                    }
                ),
            },
            ["email"],
        ),
        _ACTION_OUTPUT,
        sign_in_with_otp,
        writes=False,
    ),
    _spec(
        "auth_verify_otp",
        "Finish an OTP sign-in with the emailed code; the session then acts as that user.",
        obj(
            {
                "email": _EMAIL,
                "token": {"type": "string", "minLength": 6, "maxLength": 10},
                "type": {"enum": _OTP_TYPES, "default": "email"},
            },
            ["email", "token"],
        ),
        SESSION_OUTPUT,
        verify_otp,
        writes=False,
    ),
    _spec(
        "auth_get_session",
        "Who this MCP session acts as: the signed-in user (id, email, expiry) or none. The "
        "tokens themselves stay with the server.",
        obj({}),
        SESSION_OUTPUT,
        get_session,
        read_only=True,
        idempotent=True,
        writes=False,
    ),
    _spec(
        "auth_get_user",
        "The signed-in user's record from Auth (metadata, identities, factors).",
        obj({}),
        ROWS_OUTPUT,
        get_user,
        read_only=True,
        idempotent=True,
        writes=False,
    ),
    _spec(
        "auth_update_user",
        "Change the signed-in user's metadata (merged; null deletes a key), email or password.",
        obj({"data": _METADATA, "email": _EMAIL, "password": _PASSWORD}),
        ROWS_OUTPUT,
        update_user,
    ),
    _spec(
        "auth_sign_out",
        "Sign the user out (revoking the refresh token) and return the session to how it "
        "started (the service role, or the token its client sent).",
        obj({"scope": {"enum": ["local", "global", "others"], "default": "local"}}),
        SESSION_OUTPUT,
        sign_out,
        writes=False,
    ),
    _spec(
        "auth_admin_list_users",
        "List the project's users (paged, newest first), with their metadata.",
        obj(
            {
                "page": {"type": "integer", "minimum": 1, "default": 1},
                "per_page": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50},
            }
        ),
        ROWS_OUTPUT,
        admin_list_users,
        read_only=True,
        idempotent=True,
        writes=False,
        service_only=True,
    ),
    _spec(
        "auth_admin_get_user",
        "One user by id, with identities and factors.",
        obj({"id": _UUID}, ["id"]),
        ROWS_OUTPUT,
        admin_get_user,
        read_only=True,
        idempotent=True,
        writes=False,
        service_only=True,
    ),
    _spec(
        "auth_admin_create_user",
        "Create a user directly (no email sent): set email_confirm to let them sign in at once, "
        "app_metadata for server-controlled claims, role for the database role.",
        obj(_USER_ATTRS),
        ROWS_OUTPUT,
        admin_create_user,
        service_only=True,
    ),
    _spec(
        "auth_admin_update_user",
        "Change a user: email, password, metadata, app_metadata, role, or ban them "
        "(ban_duration, 'none' lifts it).",
        obj({"id": _UUID, **_USER_ATTRS}, ["id"]),
        ROWS_OUTPUT,
        admin_update_user,
        idempotent=True,
        service_only=True,
    ),
    _spec(
        "auth_admin_delete_user",
        "Delete a user and their sessions (should_soft_delete keeps an anonymised row).",
        obj({"id": _UUID, "should_soft_delete": {"type": "boolean", "default": False}}, ["id"]),
        _DELETED_OUTPUT,
        admin_delete_user,
        destructive=True,
        idempotent=True,
        service_only=True,
    ),
    _spec(
        "auth_admin_generate_link",
        "Make a signup, invite, magic-link, recovery or email-change link (and its OTP) "
        "without sending email, e.g. to hand to a user or to test a flow.",
        obj(
            {
                "type": {"enum": _LINK_TYPES},
                "email": _EMAIL,
                "password": _PASSWORD,
                "new_email": _EMAIL,
                "data": _METADATA,
                "redirect_to": _REDIRECT,
            },
            ["type", "email"],
        ),
        _LINK_OUTPUT,
        admin_generate_link,
        service_only=True,
    ),
]
