"""Sessions: issuing them, the refresh and PKCE grants, logout, and who a bearer token is.

A session is a row in auth.sessions with a chain of refresh tokens; each refresh revokes the
presented token and issues its child.  As GoTrue: presenting the parent of the active token
again returns the active token (a retry after a lost response); any other revoked token is
accepted within the reuse interval, and after it revokes the whole session
(`refresh_token_already_used`), since that is what a stolen token looks like.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Mapping
from typing import Any

import asyncpg

from supalite.auth import sql
from supalite.auth.context import AuthContext, Caller, audit, new_id
from supalite.auth.errors import AuthError, OAuthError, bad_request, forbidden, internal
from supalite.auth.tokens import access_claims, code_challenge_matches, refresh_token
from supalite.auth.users import is_banned, user_json

FLOW_STATE_TTL = 300  # seconds an auth code stays exchangeable, as GoTrue's
_REQUIRED_HOOK_CLAIMS = ("aud", "exp", "iat", "sub", "role", "aal", "session_id")


async def issue_session(
    ctx: AuthContext,
    conn: asyncpg.Connection,
    user: Mapping[str, Any],
    method: str,
    caller: Caller,
    *,
    provider: str = "email",
) -> dict[str, Any]:
    """A new session for `user`, signed in by `method` (password, otp, magiclink, …)."""
    sid = new_id()
    await conn.execute(
        sql.INSERT_SESSION,
        sid,
        user["id"],
        "aal1",
        caller.user_agent or None,
        _inet(caller.ip),
        None,
    )
    await conn.execute(sql.INSERT_AMR, sid, method)
    token = refresh_token()
    await conn.execute(sql.INSERT_REFRESH_TOKEN, token, str(user["id"]), None, sid)
    await conn.execute(sql.SIGNED_IN, user["id"])
    await conn.execute(sql.IDENTITY_SIGNED_IN, user["id"], provider)
    fresh = await conn.fetchrow(sql.USER_BY_ID, user["id"])
    return await token_response(ctx, conn, fresh, sid, "aal1", token, method)


async def token_response(
    ctx: AuthContext,
    conn: asyncpg.Connection,
    user: Mapping[str, Any],
    session_id: uuid.UUID,
    aal: str,
    refresh: str,
    method: str,
    amr: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """GoTrue's AccessTokenResponse for a session (`amr` read from the session unless given)."""
    if amr is None:
        amr = [dict(r) for r in await conn.fetch(sql.SESSION_AMR, session_id)]
    claims = access_claims(
        user,
        session_id=str(session_id),
        aal=aal,
        amr=amr,
        issuer=ctx.issuer,
        expiry=ctx.auth.jwt_expiry,
    )
    if ctx.auth.custom_access_token_hook:
        claims = await _run_hook(ctx, conn, user, claims, method)
    return {
        "access_token": ctx.signer.sign(claims),
        "token_type": "bearer",
        "expires_in": ctx.auth.jwt_expiry,
        "expires_at": claims["exp"],
        "refresh_token": refresh,
        "user": user_json(user),
    }


async def _run_hook(
    ctx: AuthContext,
    conn: asyncpg.Connection,
    user: Mapping[str, Any],
    claims: dict[str, Any],
    method: str,
) -> dict[str, Any]:
    """Supabase's custom access token hook: a Postgres function that may rewrite the claims."""
    uri = ctx.auth.custom_access_token_hook or ""
    schema, fn = uri.rsplit("/", 2)[-2:]
    qualified = f'"{schema}"."{fn}"'
    event = {"user_id": str(user["id"]), "claims": claims, "authentication_method": method}
    try:
        async with conn.transaction():  # a savepoint: a failing hook must not poison the tx
            raw = await conn.fetchval(sql.CALL_HOOK.format(fn=qualified), json.dumps(event))
    except asyncpg.PostgresError as e:
        raise internal(f"Error running hook URI: {uri}") from e
    out = json.loads(raw) if raw else None
    if isinstance(out, dict) and isinstance(out.get("error"), dict):
        err = out["error"]
        status = err.get("http_code") if isinstance(err.get("http_code"), int) else 500
        raise AuthError(status, "unexpected_failure", str(err.get("message", "hook error")))
    new = out.get("claims") if isinstance(out, dict) else None
    if not isinstance(new, dict) or any(k not in new for k in _REQUIRED_HOOK_CLAIMS):
        raise internal("output claims do not conform to the expected schema")
    return new


def _inet(ip: str) -> str | None:
    return ip or None


# ------------------------------------------------------------------ grants


async def refresh_grant(
    ctx: AuthContext, token: str, caller: Caller
) -> tuple[dict[str, Any], dict[str, str]]:
    if not token:
        raise OAuthError("invalid_request", "refresh_token required")
    ctx.limiter.hit("token_refresh", caller.ip)
    issued = refresh_token()
    async with ctx.pool.acquire() as conn:
        # Without a hook the rotation is one statement, its own transaction; a hook runs in
        # the same transaction, so a failing hook leaves the presented token live.
        hooked = bool(ctx.auth.custom_access_token_hook)
        async with conn.transaction() if hooked else contextlib.nullcontext():
            row = await conn.fetchrow(sql.REFRESH_ROTATE, token, issued, caller.ip[:64])
            if row is not None:
                sid = row["rotated_session_id"]
                body = await token_response(
                    ctx, conn, row, sid, row["rotated_aal"] or "aal1", issued,
                    "token_refresh", amr=json.loads(row["amr_json"]),
                )  # fmt: skip
                return body, {"sb-auth-user-id": str(row["id"]), "sb-auth-session-id": str(sid)}
    return await _refresh_other(ctx, token, caller)


async def _refresh_other(
    ctx: AuthContext, token: str, caller: Caller
) -> tuple[dict[str, Any], dict[str, str]]:
    """Every refresh that is not the live-token case: unknown, banned or session-less tokens
    get their errors, and a revoked token is a retry (its active child is returned), a reuse
    within the interval (rotated anew) or a replay (the family is revoked)."""
    headers: dict[str, str] = {}
    failure: AuthError | None = None
    async with ctx.pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(sql.REFRESH_TOKEN_FOR_UPDATE, token)
        user = await _token_user(conn, row)
        if row is None or user is None:
            raise bad_request(
                "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found"
            )
        headers["sb-auth-user-id"] = str(user["id"])
        if is_banned(user):
            raise bad_request("user_banned", "Invalid Refresh Token: User Banned")
        session = (
            await conn.fetchrow(sql.SESSION_BY_ID, row["session_id"]) if row["session_id"] else None
        )
        if session is None:
            raise bad_request("session_not_found", "Invalid Refresh Token: No Valid Session Found")
        headers["sb-auth-session-id"] = str(session["id"])
        issued: str | None = None
        if row["revoked"]:
            issued = await conn.fetchval(sql.ACTIVE_CHILD_TOKEN, session["id"], token)
            if issued is None and row["age"] > ctx.auth.refresh_token_reuse_interval:
                if ctx.auth.enable_refresh_token_rotation:
                    await conn.execute(sql.REVOKE_SESSION_TOKENS, session["id"])
                await audit(conn, caller, "token_revoked", actor=user, log_type="token")
                failure = bad_request(
                    "refresh_token_already_used", "Invalid Refresh Token: Already Used"
                )
        if failure is None:
            if issued is None:
                issued = refresh_token()
                await conn.execute(sql.REVOKE_TOKEN, row["id"])
                await conn.execute(
                    sql.INSERT_REFRESH_TOKEN, issued, str(user["id"]), token, session["id"]
                )
            await conn.execute(sql.TOUCH_SESSION, session["id"])
            await audit(conn, caller, "token_refreshed", actor=user, log_type="token")
            body = await token_response(
                ctx, conn, user, session["id"], session["aal"] or "aal1", issued, "token_refresh"
            )
    if failure is not None:  # raised after commit: the family stays revoked
        raise failure
    return body, headers


async def _token_user(
    conn: asyncpg.Connection, row: asyncpg.Record | None
) -> asyncpg.Record | None:
    if row is None or not row["user_id"]:
        return None
    try:
        uid = uuid.UUID(row["user_id"])
    except ValueError:
        return None
    return await conn.fetchrow(sql.USER_BY_ID, uid)


async def pkce_grant(
    ctx: AuthContext, auth_code: str, verifier: str, caller: Caller
) -> dict[str, Any]:
    if not auth_code or not verifier:
        raise bad_request(
            "validation_failed",
            "invalid request: both auth code and code verifier should be non-empty",
        )
    ctx.limiter.hit("sign_in_sign_ups", caller.ip)
    async with ctx.pool.acquire() as conn, conn.transaction():
        flow = await conn.fetchrow(sql.FLOW_STATE_BY_CODE, auth_code)
        if flow is None or flow["user_id"] is None or flow["auth_code_issued_at"] is None:
            raise AuthError(
                404, "flow_state_not_found", "invalid flow state, no valid flow state found"
            )
        if flow["age"] > FLOW_STATE_TTL:
            await conn.execute(sql.DELETE_FLOW_STATE, flow["id"])
            raise AuthError(400, "flow_state_expired", "invalid flow state, flow state has expired")
        if not code_challenge_matches(
            flow["code_challenge_method"], flow["code_challenge"], verifier
        ):
            raise forbidden(
                "bad_code_verifier", "code challenge does not match previously saved code verifier"
            )
        user = await conn.fetchrow(sql.USER_BY_ID, flow["user_id"])
        if user is None:
            raise AuthError(404, "user_not_found", "User not found")
        if is_banned(user):
            raise bad_request("user_banned", "User is banned")
        await conn.execute(sql.DELETE_FLOW_STATE, flow["id"])
        await audit(conn, caller, "login", actor=user, traits={"provider_type": "pkce"})
        method = flow["authentication_method"]
        return await issue_session(ctx, conn, user, _amr_method(method), caller)


def _amr_method(authentication_method: str) -> str:
    """flow_state's authentication_method → the `amr` method the session records."""
    return {
        "email/signup": "otp",
        "magiclink": "magiclink",
        "recovery": "recovery",
        "invite": "invite",
        "email_change": "email/signup",
    }.get(authentication_method, "otp")


async def create_flow_state(
    conn: asyncpg.Connection,
    user_id: uuid.UUID,
    challenge: str,
    method: str,
    authentication_method: str,
) -> None:
    await conn.execute(
        sql.INSERT_FLOW_STATE,
        user_id,
        str(uuid.uuid4()),
        method,
        challenge,
        "email",
        authentication_method,
    )


# ------------------------------------------------------------------ the caller


async def current_user(
    ctx: AuthContext, conn: asyncpg.Connection, claims: Mapping[str, Any] | None
) -> tuple[asyncpg.Record, asyncpg.Record | None]:
    """The user (and session) a verified bearer token speaks for, as GoTrue checks them."""
    if claims is None:
        raise AuthError(401, "no_authorization", "This endpoint requires a valid Bearer token")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise forbidden("bad_jwt", "invalid claim: missing sub claim")
    try:
        uid = uuid.UUID(sub)
    except ValueError:
        raise forbidden("bad_jwt", "invalid claim: sub claim must be a UUID") from None
    user = await conn.fetchrow(sql.USER_BY_ID, uid)
    if user is None:
        raise forbidden("user_not_found", "User from sub claim in JWT does not exist")
    session = None
    sid = claims.get("session_id")
    if sid:
        try:
            session = await conn.fetchrow(sql.SESSION_BY_ID, uuid.UUID(str(sid)))
        except ValueError:
            session = None
        if session is None:
            raise forbidden(
                "session_not_found", "Session from session_id claim in JWT does not exist"
            )
    return user, session


async def logout(ctx: AuthContext, scope: str, caller: Caller) -> None:
    if scope not in ("global", "local", "others"):
        raise bad_request("validation_failed", "Unsupported logout scope")
    async with ctx.pool.acquire() as conn, conn.transaction():
        user, session = await current_user(ctx, conn, caller.claims)
        if scope == "global" or session is None:
            await conn.execute(sql.DELETE_USER_SESSIONS, user["id"])
        elif scope == "local":
            await conn.execute(sql.DELETE_SESSION, session["id"])
        else:
            await conn.execute(sql.DELETE_OTHER_SESSIONS, user["id"], session["id"])
        await audit(conn, caller, "logout", actor=user, log_type="account")
