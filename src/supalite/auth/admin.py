"""The admin API (service_role only): users, links, invites, a user's factors."""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import asyncpg

from supalite.auth import params, sql
from supalite.auth.context import AuthContext, Caller, audit
from supalite.auth.emails import send_token_mail, validate_email
from supalite.auth.errors import (
    EMAIL_EXISTS,
    NOT_ADMIN,
    USER_NOT_FOUND,
    AuthError,
    not_found,
    validation,
)
from supalite.auth.flows import AUD, create_user, redirect_target
from supalite.auth.passwords import check_strength, hash_password
from supalite.auth.tokens import otp, token_hash
from supalite.auth.users import factor_json, iso, jsonb, user_json

ADMIN_ROLES = ("service_role", "supabase_admin")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def require_admin(caller: Caller) -> None:
    role = (caller.claims or {}).get("role")
    if role not in ADMIN_ROLES:
        raise NOT_ADMIN


def parse_ban_duration(value: str) -> timedelta | None:
    """Go duration syntax ("24h", "1h30m"); "none" lifts a ban (None)."""
    if value == "none":
        return None
    pos, total = 0, 0.0
    for m in _DURATION.finditer(value):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not value or pos != len(value):
        raise validation("invalid format for ban duration")
    return timedelta(seconds=total)


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise not_found("user_not_found", "User not found") from None


async def _load(conn: asyncpg.Connection, user_id: str) -> asyncpg.Record:
    user = await conn.fetchrow(sql.USER_BY_ID, _uuid(user_id))
    if user is None:
        raise USER_NOT_FOUND
    return user


def _page(query: Mapping[str, str]) -> tuple[int, int]:
    """GoTrue's `page` (from 1) and `per_page` (default 50, at most 1000)."""
    try:
        page = max(1, int(query.get("page") or "1"))
        per_page = min(1000, max(1, int(query.get("per_page") or "50")))
    except ValueError:
        raise validation("Bad Pagination Parameters") from None
    return page, per_page


def _page_headers(path: str, page: int, per_page: int, total: int) -> dict[str, str]:
    """GoTrue's pagination headers: the total, and `next`/`last` links."""
    last = max(1, -(-total // per_page))
    links = []
    if page < last:
        links.append(f'<{path}?{urlencode({"page": page + 1, "per_page": per_page})}>; rel="next"')
    links.append(f'<{path}?{urlencode({"page": last, "per_page": per_page})}>; rel="last"')
    return {"X-Total-Count": str(total), "Link": ", ".join(links)}


async def list_users(
    ctx: AuthContext, query: Mapping[str, str], path: str
) -> tuple[dict[str, Any], dict[str, str]]:
    page, per_page = _page(query)
    async with ctx.pool.acquire() as conn:
        total = await conn.fetchval(sql.COUNT_USERS, AUD)
        rows = await conn.fetch(sql.LIST_USERS, AUD, per_page, (page - 1) * per_page)
    out = {"users": [user_json(r) for r in rows], "aud": AUD}
    return out, _page_headers(path, page, per_page, total)


_AUDIT_SCOPES = ("author", "action", "type")


async def audit_log(
    ctx: AuthContext, query: Mapping[str, str], path: str
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """GET /admin/audit: newest first, optionally `query=author|action|type:<substring>`."""
    page, per_page = _page(query)
    scope: str | None = None
    pattern: str | None = None
    if q := query.get("query"):
        scope, sep, value = q.partition(":")
        if scope not in _AUDIT_SCOPES or not sep:
            raise validation(f"Invalid query scope: {q}")
        pattern = f"%{value}%" if value else None
        scope = scope if value else None
    async with ctx.pool.acquire() as conn:
        total = await conn.fetchval(sql.COUNT_AUDIT, scope, pattern)
        rows = await conn.fetch(sql.LIST_AUDIT, scope, pattern, per_page, (page - 1) * per_page)
    entries = [
        {
            "instance_id": str(r["instance_id"]),
            "id": str(r["id"]),
            "payload": jsonb(r["payload"]),
            "created_at": iso(r["created_at"]),
            "ip_address": r["ip_address"],
        }
        for r in rows
    ]
    return entries, _page_headers(path, page, per_page, total)


async def get_user(ctx: AuthContext, user_id: str) -> dict[str, Any]:
    async with ctx.pool.acquire() as conn:
        return user_json(await _load(conn, user_id))


async def create(ctx: AuthContext, body: Mapping[str, Any], caller: Caller) -> dict[str, Any]:
    email = params.text(body, "email")
    phone = params.text(body, "phone")
    password = params.optional_text(body, "password")
    if not email and not phone:
        raise validation("Cannot create a user without either an email or phone")
    if email:
        email = validate_email(email)
    hashed = None
    if password:
        hashed = await ctx.hash_new_password(password)
    ban = params.text(body, "ban_duration")
    async with ctx.pool.acquire() as conn, conn.transaction():
        if email and await conn.fetchval(sql.USER_EMAIL_TAKEN, email, AUD, uuid.UUID(int=0)):
            raise EMAIL_EXISTS
        if phone and await conn.fetchrow(sql.USER_BY_PHONE, phone, AUD):
            raise AuthError(422, "phone_exists", "Phone number already registered by another user")
        try:
            user = await create_user(
                conn,
                email=email or None,
                password_hash=hashed,
                user_metadata=params.obj(body, "user_metadata") or {},
                app_metadata=params.obj(body, "app_metadata"),
                confirmed=params.flag(body, "email_confirm", False),
                role=params.text(body, "role") or "authenticated",
                phone=phone or None,
                phone_confirmed=params.flag(body, "phone_confirm", False),
            )
        except asyncpg.UniqueViolationError:
            raise EMAIL_EXISTS from None
        if ban:
            await _set_ban(conn, user["id"], ban)
        await audit(
            conn, caller, "user_signedup", actor=user, log_type="team", traits={"provider": "email"}
        )
        fresh = await conn.fetchrow(sql.USER_BY_ID, user["id"])
    assert fresh is not None
    return user_json(fresh)


async def _set_ban(conn: asyncpg.Connection, user_id: uuid.UUID, ban: str) -> None:
    duration = parse_ban_duration(ban)
    until = None if duration is None else datetime.now(UTC) + duration
    await conn.execute(
        sql.ADMIN_UPDATE_USER, user_id, None, None, None, None, True, until, None, None
    )
    if until is not None:  # a banned user's sessions end now; refreshes fail from here on
        await conn.execute(sql.DELETE_USER_SESSIONS, user_id)


async def update(
    ctx: AuthContext, user_id: str, body: Mapping[str, Any], caller: Caller
) -> dict[str, Any]:
    email = params.text(body, "email")
    password = params.optional_text(body, "password")
    phone = params.text(body, "phone")
    role = params.text(body, "role")
    ban = params.text(body, "ban_duration")
    email_confirm = params.optional_flag(body, "email_confirm")
    phone_confirm = params.optional_flag(body, "phone_confirm")
    user_meta = params.obj(body, "user_metadata")
    app_meta = params.obj(body, "app_metadata")
    if email:
        email = validate_email(email)
    hashed = None
    if password:
        hashed = await ctx.hash_new_password(password)
    async with ctx.pool.acquire() as conn, conn.transaction():
        user = await _load(conn, user_id)
        if email and await conn.fetchval(sql.USER_EMAIL_TAKEN, email, AUD, user["id"]):
            raise EMAIL_EXISTS
        await conn.execute(
            sql.ADMIN_UPDATE_USER,
            user["id"],
            email or None,
            hashed,
            email_confirm,
            role or None,
            False,
            None,
            phone or None,
            phone_confirm,
        )
        if email:
            await conn.execute(sql.UPDATE_IDENTITY_EMAIL, user["id"], email, True)
        if user_meta is not None:
            await conn.execute(sql.MERGE_USER_METADATA, user["id"], json.dumps(user_meta))
        if app_meta is not None:
            await conn.execute(sql.MERGE_APP_METADATA, user["id"], json.dumps(app_meta))
        if ban:
            await _set_ban(conn, user["id"], ban)
        await audit(conn, caller, "user_modified", actor=user, log_type="team")
        fresh = await conn.fetchrow(sql.USER_BY_ID, user["id"])
    assert fresh is not None
    return user_json(fresh)


async def delete(
    ctx: AuthContext, user_id: str, body: Mapping[str, Any], caller: Caller
) -> dict[str, Any]:
    soft = params.flag(body, "should_soft_delete", False)
    async with ctx.pool.acquire() as conn, conn.transaction():
        user = await _load(conn, user_id)
        await audit(conn, caller, "user_deleted", actor=user, log_type="team")
        if soft:
            await conn.execute(sql.DELETE_USER_SESSIONS, user["id"])
            await conn.execute(sql.DELETE_USER_IDENTITIES, user["id"])
            await conn.execute(sql.SOFT_DELETE_USER, user["id"])
        else:
            await conn.execute(sql.DELETE_USER, user["id"])
    return {}


async def factors(ctx: AuthContext, user_id: str) -> list[dict[str, Any]]:
    async with ctx.pool.acquire() as conn:
        user = await _load(conn, user_id)
        return [factor_json(f) for f in await conn.fetch(sql.USER_FACTORS, user["id"])]


async def delete_factor(ctx: AuthContext, user_id: str, factor_id: str) -> dict[str, Any]:
    async with ctx.pool.acquire() as conn, conn.transaction():
        user = await _load(conn, user_id)
        try:
            fid = uuid.UUID(factor_id)
        except ValueError:
            raise not_found("mfa_factor_not_found", "Factor not found") from None
        factor = await conn.fetchrow(sql.FACTOR_FOR_USER, fid, user["id"])
        if factor is None:
            raise not_found("mfa_factor_not_found", "Factor not found")
        await conn.execute(sql.DELETE_FACTOR, fid)
    return factor_json(factor)


# ------------------------------------------------------------------ links and invites

_LINK_TYPES = {
    # type → (stored token kind, verification type in the link)
    "signup": ("confirmation", "signup"),
    "invite": ("confirmation", "invite"),
    "magiclink": ("recovery", "magiclink"),
    "recovery": ("recovery", "recovery"),
}


async def generate_link(
    ctx: AuthContext, body: Mapping[str, Any], caller: Caller, redirect_to: str | None
) -> dict[str, Any]:
    """The link and code an email would carry, returned instead of sent (nothing is mailed)."""
    ltype = params.text(body, "type")
    email = validate_email(params.text(body, "email"))
    target = redirect_target(ctx, params.text(body, "redirect_to") or redirect_to)
    if ltype not in (*_LINK_TYPES, "email_change_current", "email_change_new"):
        raise validation("Invalid email action link type requested")
    async with ctx.pool.acquire() as conn, conn.transaction():
        user = await conn.fetchrow(sql.USER_BY_EMAIL, email, AUD)
        if user is None:
            if ltype in ("recovery", "email_change_current", "email_change_new"):
                raise not_found("user_not_found", "User with this email not found")
            if ltype == "magiclink":
                ltype = "signup"
            password = params.text(body, "password") or secrets.token_urlsafe(32)
            check_strength(password, ctx.auth.minimum_password_length, "")
            user = await create_user(
                conn,
                email=email,
                password_hash=await hash_password(password),
                user_metadata=params.obj(body, "data") or {},
                invited=ltype == "invite",
            )
        elif ltype in ("signup", "invite") and user["email_confirmed_at"] is not None:
            raise EMAIL_EXISTS
        if ltype.startswith("email_change"):
            new_email = validate_email(params.text(body, "new_email"))
            code = otp(ctx.auth.email_otp_length)
            addr = user["email"] if ltype == "email_change_current" else new_email
            hashed = token_hash(addr, code)
            current = hashed if ltype == "email_change_current" else ""
            new = hashed if ltype == "email_change_new" else ""
            await conn.execute(sql.SET_EMAIL_CHANGE, user["id"], new_email, new, current)
            vtype = "email_change"
        else:
            kind, vtype = _LINK_TYPES[ltype]
            code = otp(ctx.auth.email_otp_length)
            hashed = token_hash(email, code)
            await conn.execute(sql.SET_TOKEN[kind], user["id"], hashed)
            if ltype == "invite":
                await conn.execute(sql.SET_INVITED, user["id"])
        await audit(
            conn,
            caller,
            "user_recovery_requested" if vtype != "signup" else "user_confirmation_requested",
            actor=user,
            log_type="team",
        )
        fresh = await conn.fetchrow(sql.USER_BY_ID, user["id"])
    assert fresh is not None
    link = f"{ctx.external_url}/verify?" + urlencode(
        {"token": hashed, "type": vtype, "redirect_to": target}
    )
    return {
        **user_json(fresh),
        "action_link": link,
        "email_otp": code,
        "hashed_token": hashed,
        "verification_type": vtype,
        "redirect_to": target,
    }


async def invite(
    ctx: AuthContext, body: Mapping[str, Any], caller: Caller, redirect_to: str | None
) -> dict[str, Any]:
    email = validate_email(params.text(body, "email"))
    target = redirect_target(ctx, redirect_to)
    async with ctx.pool.acquire() as conn, conn.transaction():
        user = await conn.fetchrow(sql.USER_BY_EMAIL, email, AUD)
        if user is not None and user["email_confirmed_at"] is not None:
            raise EMAIL_EXISTS
        if user is None:
            user = await create_user(
                conn,
                email=email,
                password_hash=None,
                user_metadata=params.obj(body, "data") or {},
                invited=True,
            )
        else:
            await conn.execute(sql.SET_INVITED, user["id"])
        await audit(
            conn, caller, "user_invited", actor=user, log_type="team", traits={"user_email": email}
        )
        await send_token_mail(ctx, conn, user, "invite", redirect_to=target)
        fresh = await conn.fetchrow(sql.USER_BY_ID, user["id"])
    assert fresh is not None
    return user_json(fresh)
