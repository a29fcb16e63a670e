"""Getting in: sign-up (email or anonymous), password sign-in, and the emailed-code requests
(OTP/magic link, recovery, resend, reauthentication)."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg

from supalite.auth import params, sql
from supalite.auth.context import AuthContext, Caller, audit, new_id
from supalite.auth.emails import send_email_change, send_token_mail, validate_email
from supalite.auth.errors import (
    INVALID_CREDENTIALS,
    AuthError,
    bad_request,
    unprocessable,
    validation,
)
from supalite.auth.passwords import hash_password, verify_password
from supalite.auth.redirects import choose
from supalite.auth.sessions import current_user, issue_session
from supalite.auth.users import email_identity_data, is_banned, is_confirmed, iso, user_json

AUD = "authenticated"


def redirect_target(ctx: AuthContext, requested: str | None) -> str:
    return choose(requested, ctx.auth.site_url, ctx.auth.additional_redirect_urls)


async def create_user(
    conn: asyncpg.Connection,
    *,
    email: str | None,
    password_hash: str | None,
    user_metadata: Mapping[str, Any],
    app_metadata: Mapping[str, Any] | None = None,
    confirmed: bool = False,
    invited: bool = False,
    anonymous: bool = False,
    role: str = "authenticated",
    phone: str | None = None,
    phone_confirmed: bool = False,
) -> asyncpg.Record:
    """A row in auth.users plus its email identity, as GoTrue creates them."""
    uid = new_id()
    now = datetime.now(UTC)
    app = dict(app_metadata or {})
    if not anonymous and email:
        app.setdefault("provider", "email")
        app.setdefault("providers", ["email"])
    await conn.execute(
        sql.INSERT_USER,
        uid,
        AUD,
        role,
        email,
        password_hash,
        now if confirmed else None,
        now if invited else None,
        json.dumps(app),
        json.dumps(dict(user_metadata)),
        phone,
        now if phone_confirmed else None,
        anonymous,
    )
    if email and not anonymous:
        data = email_identity_data(uid, email, verified=confirmed, extra=user_metadata)
        await conn.execute(sql.INSERT_IDENTITY, str(uid), uid, data, "email")
    row = await conn.fetchrow(sql.USER_BY_ID, uid)
    assert row is not None
    return row


def _faux_user(email: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """What sign-up answers for an address that is already registered, so the answer does not
    reveal it (GoTrue's sanitizeUser): a plausible, unconfirmed user that does not exist."""
    now = iso(datetime.now(UTC))
    return {
        "id": str(uuid.uuid4()),
        "aud": AUD,
        "role": AUD,
        "email": email,
        "phone": "",
        "confirmation_sent_at": now,
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": {},
        "identities": [],
        "created_at": now,
        "updated_at": now,
        "is_anonymous": False,
    }


async def signup(
    ctx: AuthContext, body: Mapping[str, Any], caller: Caller, redirect_to: str | None
) -> dict[str, Any]:
    if not ctx.auth.enable_signup:
        raise unprocessable("signup_disabled", "Signups not allowed for this instance")
    email = params.text(body, "email")
    phone = params.text(body, "phone")
    password = params.text(body, "password")
    data = params.obj(body, "data") or {}
    flow = params.pkce(body)
    if not email and not phone:
        return await _anonymous_signup(ctx, data, caller)
    if email and phone:
        raise validation("Only an email address or phone number should be provided on signup.")
    if phone:
        raise bad_request("phone_provider_disabled", "Phone signups are disabled")
    if not ctx.auth.email_enable_signup:
        raise bad_request("email_provider_disabled", "Email signups are disabled")
    if not password:
        raise validation("Signup requires a valid password")
    ctx.check_password(password)
    email = validate_email(email)
    ctx.limiter.hit("sign_in_sign_ups", caller.ip)
    target = redirect_target(ctx, redirect_to)
    hashed = await hash_password(password)
    async with ctx.pool.acquire() as conn, conn.transaction():
        user = await conn.fetchrow(sql.USER_BY_EMAIL, email, AUD)
        if user is not None and is_confirmed(user):
            await audit(conn, caller, "user_repeated_signup", actor=user)
            if ctx.autoconfirm:
                raise unprocessable("user_already_exists", "User already registered")
            return _faux_user(email, data)
        if user is None:
            user = await create_user(conn, email=email, password_hash=hashed, user_metadata=data)
        if ctx.autoconfirm:
            await audit(conn, caller, "user_signedup", actor=user, traits={"provider": "email"})
            await conn.execute(sql.CONFIRM_EMAIL, user["id"])
            await audit(conn, caller, "login", actor=user, traits={"provider": "email"})
            return await issue_session(ctx, conn, user, "password", caller)
        await audit(
            conn, caller, "user_confirmation_requested", actor=user, traits={"provider": "email"}
        )
        await send_token_mail(ctx, conn, user, "signup", redirect_to=target, pkce=flow)
        fresh = await conn.fetchrow(sql.USER_BY_ID, user["id"])
        assert fresh is not None
        return user_json(fresh)


async def _anonymous_signup(
    ctx: AuthContext, data: Mapping[str, Any], caller: Caller
) -> dict[str, Any]:
    if not ctx.auth.enable_anonymous_sign_ins:
        raise unprocessable("anonymous_provider_disabled", "Anonymous sign-ins are disabled")
    ctx.limiter.hit("anonymous_users", caller.ip)
    async with ctx.pool.acquire() as conn, conn.transaction():
        user = await create_user(
            conn, email=None, password_hash=None, user_metadata=data, anonymous=True
        )
        await audit(conn, caller, "user_signedup", actor=user, traits={"provider": "anonymous"})
        return await issue_session(ctx, conn, user, "anonymous", caller, provider="anonymous")


async def password_grant(
    ctx: AuthContext, body: Mapping[str, Any], caller: Caller
) -> dict[str, Any]:
    email = params.text(body, "email")
    phone = params.text(body, "phone")
    password = params.text(body, "password")
    if not email and not phone:
        raise validation("missing email or phone")
    ctx.limiter.hit("sign_in_sign_ups", caller.ip)
    address = "address:" + (email or phone).strip().lower()
    ctx.limiter.check("sign_in_sign_ups", address)
    async with ctx.pool.acquire() as conn:
        if email:
            user = await conn.fetchrow(sql.USER_BY_EMAIL, email.strip(), AUD)
        else:
            user = await conn.fetchrow(sql.USER_BY_PHONE, phone.strip(), AUD)
    # One bcrypt verify whether or not the user exists: timing tells nothing.
    ok = await verify_password(password, user["encrypted_password"] if user else None)
    if user is None or not ok or user["deleted_at"] is not None:
        ctx.limiter.charge("sign_in_sign_ups", address)
        raise INVALID_CREDENTIALS
    if is_banned(user):
        raise bad_request("user_banned", "User is banned")
    if email and user["email_confirmed_at"] is None and not ctx.autoconfirm:
        raise bad_request("email_not_confirmed", "Email not confirmed")
    async with ctx.pool.acquire() as conn, conn.transaction():
        await audit(conn, caller, "login", actor=user, traits={"provider": "email"})
        body_out = await issue_session(ctx, conn, user, "password", caller)
    try:
        ctx.check_password(password)
    except AuthError as weak:  # sign-in succeeds; the client is told the password is weak
        body_out["weak_password"] = weak.extra.get("weak_password")
    return body_out


async def otp(ctx: AuthContext, body: Mapping[str, Any], caller: Caller) -> dict[str, Any]:
    """POST /otp and /magiclink: email a sign-in code and link (creating the user if allowed)."""
    if params.text(body, "phone"):
        raise bad_request("phone_provider_disabled", "Unsupported phone provider")
    email = validate_email(params.text(body, "email"))
    create = params.flag(body, "create_user", True)
    data = params.obj(body, "data") or {}
    flow = params.pkce(body)
    target = redirect_target(ctx, params.text(body, "redirect_to") or None)
    ctx.limiter.hit("token_verifications", caller.ip)
    async with ctx.pool.acquire() as conn, conn.transaction():
        user = await conn.fetchrow(sql.USER_BY_EMAIL, email, AUD)
        if user is None:
            if not create or not ctx.auth.enable_signup:
                raise unprocessable("otp_disabled", "Signups not allowed for otp")
            # As GoTrue: a user with an unguessable password, confirmed by the code itself.
            hashed = await hash_password(secrets.token_urlsafe(32))
            user = await create_user(conn, email=email, password_hash=hashed, user_metadata=data)
            await audit(conn, caller, "user_signedup", actor=user, traits={"provider": "email"})
        if is_banned(user):
            raise bad_request("user_banned", "User is banned")
        if not is_confirmed(user):
            await send_token_mail(ctx, conn, user, "signup", redirect_to=target, pkce=flow)
        else:
            await audit(conn, caller, "user_recovery_requested", actor=user)
            await send_token_mail(ctx, conn, user, "magiclink", redirect_to=target, pkce=flow)
    return {}


async def recover(
    ctx: AuthContext, body: Mapping[str, Any], caller: Caller, redirect_to: str | None
) -> dict[str, Any]:
    email = validate_email(params.text(body, "email"))
    flow = params.pkce(body)
    target = redirect_target(ctx, redirect_to)
    ctx.limiter.hit("token_verifications", caller.ip)
    async with ctx.pool.acquire() as conn, conn.transaction():
        user = await conn.fetchrow(sql.USER_BY_EMAIL, email, AUD)
        if user is None:
            return {}  # no leak of who is registered
        await audit(conn, caller, "user_recovery_requested", actor=user)
        await send_token_mail(ctx, conn, user, "recovery", redirect_to=target, pkce=flow)
    return {}


async def resend(
    ctx: AuthContext, body: Mapping[str, Any], caller: Caller, redirect_to: str | None
) -> dict[str, Any]:
    kind = params.text(body, "type")
    if kind not in ("signup", "email_change", "sms", "phone_change"):
        raise validation("Missing one of these types: signup, email_change, sms, phone_change")
    if kind in ("sms", "phone_change") or params.text(body, "phone"):
        raise bad_request("phone_provider_disabled", "Unsupported phone provider")
    email = validate_email(params.text(body, "email"))
    flow = params.pkce(body)
    target = redirect_target(ctx, redirect_to)
    ctx.limiter.hit("token_verifications", caller.ip)
    async with ctx.pool.acquire() as conn, conn.transaction():
        if kind == "signup":
            user = await conn.fetchrow(sql.USER_BY_EMAIL, email, AUD)
            if user is None or is_confirmed(user):
                return {}
            await send_token_mail(ctx, conn, user, "signup", redirect_to=target, pkce=flow)
        else:
            user = await conn.fetchrow(sql.USER_BY_EMAIL_CHANGE, email)
            if user is None:
                return {}
            await send_email_change(
                ctx, conn, user, user["email_change"], redirect_to=target, pkce=flow is not None
            )
    return {}


async def reauthenticate(ctx: AuthContext, caller: Caller) -> dict[str, Any]:
    async with ctx.pool.acquire() as conn, conn.transaction():
        user, _ = await current_user(ctx, conn, caller.claims)
        if not user["email"]:
            raise unprocessable(
                "validation_failed", "Reauthentication requires the user to have an email"
            )
        await audit(conn, caller, "user_reauthenticate_requested", actor=user)
        await send_token_mail(ctx, conn, user, "reauthentication", redirect_to=ctx.auth.site_url)
    return {}
