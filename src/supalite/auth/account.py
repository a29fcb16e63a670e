"""The signed-in user's own account: GET and PUT /user."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from supalite.auth import params, sql
from supalite.auth.context import AuthContext, Caller, audit
from supalite.auth.emails import send_email_change, validate_email
from supalite.auth.errors import EMAIL_EXISTS, AuthError, bad_request, forbidden, unprocessable
from supalite.auth.flows import AUD, redirect_target
from supalite.auth.passwords import verify_password
from supalite.auth.sessions import create_flow_state, current_user
from supalite.auth.tokens import token_hash
from supalite.auth.users import jsonb, user_json
from supalite.auth.verify import apply_email_change

_REAUTH_WINDOW = timedelta(hours=24)


async def get_user(ctx: AuthContext, caller: Caller) -> dict[str, Any]:
    async with ctx.pool.acquire() as conn:
        user, _ = await current_user(ctx, conn, caller.claims)
    return user_json(user)


def _has_verified_factor(user: Mapping[str, Any]) -> bool:
    return any(f.get("status") == "verified" for f in jsonb(user["factors_json"]))


async def update_user(
    ctx: AuthContext, body: Mapping[str, Any], caller: Caller, redirect_to: str | None
) -> dict[str, Any]:
    email = params.text(body, "email")
    password = params.optional_text(body, "password")
    nonce = params.text(body, "nonce")
    data = params.obj(body, "data")
    if params.obj(body, "app_metadata") is not None:
        raise forbidden("not_admin", "Updating app_metadata requires admin privileges")
    if params.text(body, "phone"):
        raise bad_request("phone_provider_disabled", "Unsupported phone provider")
    flow = params.pkce(body)
    target = redirect_target(ctx, redirect_to)
    if email:
        email = validate_email(email)
    new_hash = None
    if password:
        new_hash = await ctx.hash_new_password(password)
    async with ctx.pool.acquire() as conn, conn.transaction():
        user, session = await current_user(ctx, conn, caller.claims)
        changing_email = bool(email) and email != (user["email"] or "")
        if (
            _has_verified_factor(user)
            and (caller.claims or {}).get("aal") != "aal2"
            and (password or changing_email)
        ):
            raise AuthError(
                401,
                "insufficient_aal",
                "AAL2 session is required to update email or password when MFA is enabled.",
            )
        if user["is_anonymous"] and password and not email:
            raise unprocessable(
                "validation_failed",
                "Updating password of an anonymous user without an email or phone is not allowed",
            )
        if changing_email and await conn.fetchval(sql.USER_EMAIL_TAKEN, email, AUD, user["id"]):
            raise EMAIL_EXISTS
        if password is not None:
            await _change_password(ctx, conn, user, session, password, new_hash, nonce, caller)
        if data is not None:
            await conn.execute(sql.MERGE_USER_METADATA, user["id"], json.dumps(data))
        if changing_email:
            if user["is_anonymous"] and ctx.autoconfirm:
                await conn.execute(sql.SET_EMAIL_CHANGE, user["id"], email, "", "")
                await apply_email_change(ctx, conn, user, None, caller)
            else:
                if flow is not None:
                    await create_flow_state(conn, user["id"], flow[0], flow[1], "email_change")
                await send_email_change(
                    ctx, conn, user, email, redirect_to=target, pkce=flow is not None
                )
        await audit(conn, caller, "user_modified", actor=user)
        fresh = await conn.fetchrow(sql.USER_BY_ID, user["id"])
    assert fresh is not None
    return user_json(fresh)


async def _change_password(
    ctx: AuthContext,
    conn: asyncpg.Connection,
    user: asyncpg.Record,
    session: asyncpg.Record | None,
    password: str,
    new_hash: str | None,
    nonce: str,
    caller: Caller,
) -> None:
    if ctx.auth.email_secure_password_change and (
        session is None or datetime.now(UTC) > session["created_at"] + _REAUTH_WINDOW
    ):
        if not nonce:
            raise bad_request(
                "reauthentication_needed", "Password update requires reauthentication"
            )
        await verify_reauthentication(ctx, conn, user, nonce)
    if (
        password
        and user["encrypted_password"]
        and await verify_password(password, user["encrypted_password"])
    ):
        raise unprocessable(
            "same_password", "New password should be different from the old password."
        )
    await conn.execute(sql.SET_PASSWORD, user["id"], new_hash)
    if session is not None:  # other devices sign in again with the new password
        await conn.execute(sql.DELETE_OTHER_SESSIONS, user["id"], session["id"])
    await audit(conn, caller, "user_updated_password", actor=user)


async def verify_reauthentication(
    ctx: AuthContext, conn: asyncpg.Connection, user: asyncpg.Record, nonce: str
) -> None:
    stored = user["reauthentication_token"] or ""
    sent = user["reauthentication_sent_at"]
    expired = sent is None or datetime.now(UTC) > sent + timedelta(
        seconds=ctx.auth.email_otp_expiry
    )
    if not stored or expired or stored != token_hash(user["email"] or "", nonce):
        raise AuthError(
            400,
            "reauthentication_not_valid",
            "Reauthentication failed. Please check the nonce provided",
        )
    await conn.execute(sql.CLEAR_REAUTHENTICATION, user["id"])
