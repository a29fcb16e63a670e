"""MFA with TOTP: enroll, challenge, verify (the session becomes aal2), unenroll."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from supalite.auth import params, sql, totp
from supalite.auth.context import AuthContext, Caller, audit, new_id
from supalite.auth.errors import AuthError, forbidden, not_found, unprocessable, validation
from supalite.auth.sessions import current_user, token_response
from supalite.auth.tokens import refresh_token

CHALLENGE_TTL = 300  # seconds, GoTrue's default MFA challenge expiry


async def _user_and_session(
    ctx: AuthContext, conn: asyncpg.Connection, caller: Caller
) -> tuple[asyncpg.Record, asyncpg.Record]:
    user, session = await current_user(ctx, conn, caller.claims)
    if user["is_anonymous"]:
        raise forbidden("no_authorization", "Anonymous user not allowed to perform these actions")
    if session is None:
        raise forbidden("session_not_found", "Session from session_id claim in JWT does not exist")
    return user, session


async def _factor(conn: asyncpg.Connection, factor_id: str, user_id: uuid.UUID) -> asyncpg.Record:
    try:
        fid = uuid.UUID(factor_id)
    except ValueError:
        raise not_found("mfa_factor_not_found", "Factor not found") from None
    factor = await conn.fetchrow(sql.FACTOR_FOR_USER, fid, user_id)
    if factor is None:
        raise not_found("mfa_factor_not_found", "Factor not found")
    return factor


async def enroll(ctx: AuthContext, body: Mapping[str, Any], caller: Caller) -> dict[str, Any]:
    ftype = params.text(body, "factor_type")
    if ftype != "totp":
        if ftype in ("phone", "webauthn"):
            raise unprocessable(
                f"mfa_{ftype}_enroll_not_enabled", f"MFA enroll is disabled for {ftype}"
            )
        raise validation("factor_type needs to be totp, phone or webauthn")
    if not ctx.auth.mfa_totp_enroll_enabled:
        raise unprocessable("mfa_totp_enroll_not_enabled", "MFA enroll is disabled for TOTP")
    name = params.text(body, "friendly_name")
    issuer = params.text(body, "issuer") or (urlsplit(ctx.auth.site_url).hostname or "supalite")
    async with ctx.pool.acquire() as conn, conn.transaction():
        user, _ = await _user_and_session(ctx, conn, caller)
        await conn.execute(sql.DELETE_UNVERIFIED_FACTORS, user["id"])
        existing = await conn.fetch(sql.USER_FACTORS, user["id"])
        verified = [f for f in existing if f["status"] == "verified"]
        if len(verified) >= ctx.auth.mfa_max_enrolled_factors:
            raise unprocessable(
                "too_many_enrolled_mfa_factors",
                "Maximum number of verified factors reached, unenroll to continue",
            )
        if name and any(f["friendly_name"] == name for f in existing):
            raise unprocessable(
                "mfa_factor_name_conflict",
                f'A factor with the friendly name "{name}" for this user already exists',
            )
        secret = totp.new_secret()
        factor = await conn.fetchrow(
            sql.INSERT_FACTOR, new_id(), user["id"], name or None, "totp", secret
        )
        await audit(conn, caller, "factor_in_progress", actor=user, log_type="factor")
    link = totp.uri(secret, user["email"] or user["phone"] or str(user["id"]), issuer)
    out: dict[str, Any] = {"id": str(factor["id"]), "type": "totp"}
    if name:
        out["friendly_name"] = name
    out["totp"] = {"qr_code": totp.qr_svg(link), "secret": secret, "uri": link}
    return out


async def challenge(ctx: AuthContext, factor_id: str, caller: Caller) -> dict[str, Any]:
    async with ctx.pool.acquire() as conn, conn.transaction():
        user, _ = await _user_and_session(ctx, conn, caller)
        factor = await _factor(conn, factor_id, user["id"])
        row = await conn.fetchrow(sql.INSERT_CHALLENGE, new_id(), factor["id"], caller.ip or None)
        await conn.execute(sql.TOUCH_FACTOR_CHALLENGED, factor["id"])
    expires = row["created_at"] + timedelta(seconds=CHALLENGE_TTL)
    return {"id": str(row["id"]), "type": "totp", "expires_at": int(expires.timestamp())}


async def verify(
    ctx: AuthContext, factor_id: str, body: Mapping[str, Any], caller: Caller
) -> dict[str, Any]:
    session = await _verify(ctx, factor_id, body, caller)
    if session is None:
        raise unprocessable("mfa_verification_failed", "Invalid TOTP code entered")
    return session


async def _verify(
    ctx: AuthContext, factor_id: str, body: Mapping[str, Any], caller: Caller
) -> dict[str, Any] | None:
    """The aal2 session, or None for a wrong code (after recording the attempt)."""
    if not ctx.auth.mfa_totp_verify_enabled:
        raise unprocessable("mfa_totp_verify_not_enabled", "MFA verification is disabled for TOTP")
    code = params.text(body, "code")
    challenge_id = params.text(body, "challenge_id")
    try:
        cid = uuid.UUID(challenge_id)
    except ValueError:
        raise validation("challenge_id must be a UUID") from None
    async with ctx.pool.acquire() as conn, conn.transaction():
        user, session = await _user_and_session(ctx, conn, caller)
        factor = await _factor(conn, factor_id, user["id"])
        row = await conn.fetchrow(sql.CHALLENGE_FOR_UPDATE, cid, factor["id"])
        if row is None or row["verified_at"] is not None:
            raise unprocessable(
                "mfa_verification_failed", "MFA factor with the provided challenge ID not found"
            )
        if row["age"] > CHALLENGE_TTL:
            raise unprocessable(
                "mfa_challenge_expired",
                f"MFA challenge {cid} has expired, verify against another challenge or create"
                " a new challenge.",
            )
        if not totp.verify(factor["secret"], code.strip()):
            # Recorded (committed) before the 422, so failed attempts show in the audit log.
            await audit(conn, caller, "verification_attempted", actor=user, log_type="factor")
            return None
        await conn.execute(sql.CHALLENGE_VERIFIED, cid)
        if factor["status"] != "verified":
            await conn.execute(sql.VERIFY_FACTOR, factor["id"])
        await conn.execute(sql.UPGRADE_SESSION, session["id"], "aal2", factor["id"])
        await conn.execute(sql.INSERT_AMR, session["id"], "totp")
        issued = await _rotate(conn, user, session)
        await audit(conn, caller, "verification_attempted", actor=user, log_type="factor")
        fresh = await conn.fetchrow(sql.USER_BY_ID, user["id"])
        assert fresh is not None
        return await token_response(ctx, conn, fresh, session["id"], "aal2", issued, "totp")


async def _rotate(conn: asyncpg.Connection, user: asyncpg.Record, session: asyncpg.Record) -> str:
    """A new refresh token for the upgraded session, child of its active one."""
    active = await conn.fetchrow(sql.ACTIVE_SESSION_TOKEN, session["id"])
    issued = refresh_token()
    parent = None
    if active is not None:
        await conn.execute(sql.REVOKE_TOKEN, active["id"])
        parent = active["token"]
    await conn.execute(sql.INSERT_REFRESH_TOKEN, issued, str(user["id"]), parent, session["id"])
    return issued


async def unenroll(ctx: AuthContext, factor_id: str, caller: Caller) -> dict[str, Any]:
    async with ctx.pool.acquire() as conn, conn.transaction():
        user, _ = await _user_and_session(ctx, conn, caller)
        factor = await _factor(conn, factor_id, user["id"])
        # The token's own level decides, as GoTrue reads it: an aal1 token stays aal1 even
        # after another token of the same session was upgraded.
        if factor["status"] == "verified" and (caller.claims or {}).get("aal") != "aal2":
            raise AuthError(401, "insufficient_aal", "AAL2 required to unenroll verified factor")
        await conn.execute(sql.DELETE_FACTOR, factor["id"])
        await audit(conn, caller, "factor_deleted", actor=user, log_type="factor")
    return {"id": str(factor["id"])}
