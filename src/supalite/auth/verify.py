"""GET and POST /verify: an emailed code or link proves an address, then the user is signed
in (a session, or for PKCE an auth code the client exchanges)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from supalite.auth import params, sql
from supalite.auth.context import AuthContext, Caller, audit
from supalite.auth.emails import PURPOSES, validate_email
from supalite.auth.errors import LINK_EXPIRED, OTP_EXPIRED, AuthError, forbidden, validation
from supalite.auth.flows import AUD, redirect_target
from supalite.auth.redirects import with_fragment, with_query
from supalite.auth.sessions import issue_session
from supalite.auth.tokens import token_hash
from supalite.auth.users import email_identity_data, is_banned

SINGLE_CONFIRMATION = (
    "Confirmation link accepted. Please proceed to confirm link sent to the other email"
)
# verification type → which stored token it matches, and its sent-at column.
_LOOKUP = {
    "signup": ("confirmation", ("confirmation_token",), "confirmation_sent_at"),
    "invite": ("confirmation", ("confirmation_token",), "confirmation_sent_at"),
    "recovery": ("recovery", ("recovery_token",), "recovery_sent_at"),
    "magiclink": ("recovery", ("recovery_token",), "recovery_sent_at"),
    "email_change": (
        "email_change",
        ("email_change_token_current", "email_change_token_new"),
        "email_change_sent_at",
    ),
    "email": (
        "confirmation_or_recovery",
        ("confirmation_token", "recovery_token"),
        "confirmation_sent_at",
    ),
}
# verification type → flow_state.authentication_method, for PKCE.
_AUTH_METHOD = {p.verify_type: p.auth_method for p in PURPOSES.values() if p.auth_method} | {
    "email_change": "email_change"
}


def _expired(ctx: AuthContext, sent_at: datetime | None) -> bool:
    if sent_at is None:
        return True
    return datetime.now(UTC) > sent_at + timedelta(seconds=ctx.auth.email_otp_expiry)


def _effective_type(vtype: str, user: Mapping[str, Any], hashed: str) -> str:
    """`email` verifications act as signup or magic link, by which token matched."""
    if vtype != "email":
        return vtype
    return "magiclink" if hashed in (user["recovery_token"], "pkce_" + hashed) else "signup"


def _matches(stored: str, hashed: str) -> bool:
    return bool(stored) and stored in (hashed, "pkce_" + hashed)


async def _find_by_hash(
    ctx: AuthContext, conn: asyncpg.Connection, vtype: str, hashed: str
) -> tuple[asyncpg.Record, str]:
    lookup, _, _ = _LOOKUP[vtype]
    user = await conn.fetchrow(sql.USER_BY_TOKEN[lookup], hashed)
    if user is None:
        raise LINK_EXPIRED
    vtype = _effective_type(vtype, user, hashed)
    sent_col = _LOOKUP[vtype][2]
    if is_banned(user):
        raise forbidden("user_banned", "User is banned")
    if _expired(ctx, user[sent_col]):
        raise LINK_EXPIRED
    return user, vtype


async def _find_by_code(
    ctx: AuthContext, conn: asyncpg.Connection, vtype: str, email: str, code: str
) -> tuple[asyncpg.Record, str, str]:
    """User, effective type and the stored token a code for `email` matched."""
    hashed = token_hash(email, code)
    if vtype == "email_change":
        user = await conn.fetchrow(sql.USER_BY_EMAIL_OR_CHANGE, email, AUD)
    else:
        user = await conn.fetchrow(sql.USER_BY_EMAIL, email, AUD)
    if user is None:
        raise OTP_EXPIRED
    if is_banned(user):
        raise forbidden("user_banned", "User is banned")
    candidates = ("signup", "magiclink") if vtype == "email" else (vtype,)
    for candidate in candidates:
        _, columns, sent_col = _LOOKUP[candidate]
        for col in columns:
            if _matches(user[col], hashed) and not _expired(ctx, user[sent_col]):
                return user, candidate, user[col]
    raise OTP_EXPIRED


async def _apply(
    ctx: AuthContext,
    conn: asyncpg.Connection,
    user: asyncpg.Record,
    vtype: str,
    stored: str,
    caller: Caller,
) -> bool:
    """Act on a verified token.  False when an email change still awaits its other half."""
    if vtype in ("signup", "invite"):
        await conn.execute(sql.CONFIRM_EMAIL, user["id"])
        await conn.execute(sql.UPDATE_IDENTITY_EMAIL, user["id"], user["email"], True)
        await conn.execute(sql.CLEAR_ONE_TIME_TOKENS, user["id"], ["confirmation_token"])
        await audit(conn, caller, "user_signedup", actor=user, traits={"provider": "email"})
    elif vtype in ("recovery", "magiclink"):
        await conn.execute(sql.CLEAR_RECOVERY, user["id"])
        await conn.execute(sql.CLEAR_ONE_TIME_TOKENS, user["id"], ["recovery_token"])
        if user["email_confirmed_at"] is None:
            await conn.execute(sql.CONFIRM_EMAIL, user["id"])
            await conn.execute(sql.UPDATE_IDENTITY_EMAIL, user["id"], user["email"], True)
        await audit(conn, caller, "login", actor=user)
    elif vtype == "email_change":
        return await apply_email_change(ctx, conn, user, stored, caller)
    return True


async def apply_email_change(
    ctx: AuthContext,
    conn: asyncpg.Connection,
    user: asyncpg.Record,
    stored: str | None,
    caller: Caller,
) -> bool:
    """Both halves confirmed (or only one needed): the new address becomes the address."""
    double = ctx.auth.email_double_confirm_changes and not ctx.autoconfirm
    if stored is not None and double and user["email"] and user["email_change_confirm_status"] == 0:
        await conn.execute(sql.EMAIL_CHANGE_HALF_CONFIRMED, user["id"], stored)
        return False
    new_email = await conn.fetchval(sql.APPLY_EMAIL_CHANGE, user["id"])
    await conn.execute(
        sql.INSERT_IDENTITY,
        str(user["id"]),
        user["id"],
        email_identity_data(user["id"], new_email),
        "email",
    )
    await conn.execute(
        sql.CLEAR_ONE_TIME_TOKENS,
        user["id"],
        ["email_change_token_current", "email_change_token_new"],
    )
    await audit(conn, caller, "user_modified", actor=user)
    return True


async def verify_post(ctx: AuthContext, body: Mapping[str, Any], caller: Caller) -> dict[str, Any]:
    vtype = params.text(body, "type")
    code = params.text(body, "token")
    hashed = params.text(body, "token_hash")
    email = params.text(body, "email")
    if not vtype:
        raise validation("Verify requires a verification type")
    if vtype in ("sms", "phone_change") or params.text(body, "phone"):
        raise AuthError(400, "phone_provider_disabled", "Unsupported phone provider")
    if vtype not in _LOOKUP:
        raise validation("Unsupported verification type")
    if bool(code) == bool(hashed):
        raise validation("Verify requires either a token or a token hash")
    ctx.limiter.hit("token_verifications", caller.ip)
    async with ctx.pool.acquire() as conn, conn.transaction():
        if code:
            if not email:
                raise validation(
                    "Only an email address or phone number should be provided on verify"
                )
            user, vtype, stored = await _find_by_code(ctx, conn, vtype, validate_email(email), code)
        else:
            user, vtype = await _find_by_hash(ctx, conn, vtype, hashed)
            stored = hashed
        if not await _apply(ctx, conn, user, vtype, stored, caller):
            return {"msg": SINGLE_CONFIRMATION, "code": "200"}
        return await issue_session(ctx, conn, user, "otp", caller)


async def verify_get(ctx: AuthContext, query: Mapping[str, str], caller: Caller) -> str:
    """The URL to redirect to (303): tokens in the fragment, or `?code=` for PKCE, or the
    error in the fragment (and the query, for PKCE) as GoTrue puts it."""
    token = query.get("token", "")
    vtype = query.get("type", "")
    target = redirect_target(ctx, query.get("redirect_to"))
    if not vtype:
        raise validation("Verify requires a verification type")
    if not token:
        raise validation("Verify requires a token or a token hash")
    pkce = token.startswith("pkce_")
    if vtype not in _AUTH_METHOD:
        raise validation("Unsupported verification type")
    try:
        ctx.limiter.hit("token_verifications", caller.ip)
        async with ctx.pool.acquire() as conn, conn.transaction():
            user, vtype = await _find_by_hash(ctx, conn, vtype, token)
            if not await _apply(ctx, conn, user, vtype, token, caller):
                fragment = {"message": SINGLE_CONFIRMATION, "sb": ""}
                url = with_query(target, {"message": SINGLE_CONFIRMATION}) if pkce else target
                return with_fragment(url, fragment)
            if pkce:
                code = await conn.fetchval(sql.ISSUE_AUTH_CODE, user["id"], _AUTH_METHOD[vtype])
                if code is None:
                    raise AuthError(404, "flow_state_not_found", "No associated flow state found.")
                return with_query(target, {"code": code})
            session = await issue_session(ctx, conn, user, "otp", caller)
    except AuthError as e:
        return error_redirect(target, e, pkce)
    return with_fragment(
        target,
        {
            "access_token": session["access_token"],
            "expires_at": str(session["expires_at"]),
            "expires_in": str(session["expires_in"]),
            "refresh_token": session["refresh_token"],
            "token_type": "bearer",
            "type": vtype,
            "sb": "",
        },
    )


_OAUTH_ERRORS = {
    400: "invalid_request",
    401: "unauthorized_client",
    403: "access_denied",
    429: "access_denied",
    500: "server_error",
    503: "temporarily_unavailable",
}


def error_redirect(target: str, e: AuthError, pkce: bool) -> str:
    params_ = {
        "error": _OAUTH_ERRORS.get(e.status, "server_error"),
        "error_code": e.error_code,
        "error_description": e.msg,
    }
    url = with_query(target, params_) if pkce else target
    return with_fragment(url, {**params_, "sb": ""})
