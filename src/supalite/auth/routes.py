"""HTTP for Auth (`/auth/v1`): parse, call, respond, in GoTrue's shapes.

Kong's rules apply first: the open paths (`/verify`, `/callback`, `/authorize`, the JWKS) need
no apikey, every other path needs one of the project's keys.  Endpoints that act for a user
read the bearer token (or the apikey's token, as Kong passes it on) themselves.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from supalite import __version__
from supalite.auth import account, admin, flows, mfa, sessions, verify
from supalite.auth.context import AuthContext, Caller
from supalite.auth.errors import (
    API_VERSION_2024,
    API_VERSION_HEADER,
    AuthError,
    OAuthError,
    forbidden,
)
from supalite.gateway import GatewayError

log = logging.getLogger("supalite.auth")
MAX_BODY = 1 << 20  # GoTrue's limit on request bodies

Handler = Callable[[AuthContext, Request, Caller, dict[str, Any]], Awaitable[Response]]


def _versioned(request: Request) -> bool:
    v = request.headers.get(API_VERSION_HEADER, "")
    return len(v) == 10 and v >= API_VERSION_2024


def error_response(request: Request, e: AuthError) -> Response:
    headers = {"x-sb-error-code": e.error_code, **e.headers}
    if _versioned(request):
        headers[API_VERSION_HEADER] = API_VERSION_2024
    return JSONResponse(e.body(_versioned(request)), status_code=e.status, headers=headers)


async def _body(request: Request) -> dict[str, Any]:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return {}
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise AuthError(413, "request_entity_too_large", "Request body too large")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return {}
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return dict(parse_qsl(raw.decode("utf-8", "replace")))
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise AuthError(400, "bad_json", f"Could not parse request body as JSON: {e}") from None
    if not isinstance(doc, dict):
        raise AuthError(400, "bad_json", "Could not parse request body as JSON: expected an object")
    return doc


def _claims(request: Request) -> dict[str, Any] | None:
    """The verified claims of the bearer token (or the apikey's), or None without either."""
    gateway = request.app.state.gateway
    token = gateway.bearer(request.headers) or gateway.apikey_token(
        request.headers, request.query_params
    )
    if token is None:
        return None
    try:
        return dict(gateway.verify(token))
    except GatewayError as e:
        raise forbidden(
            "bad_jwt", f"invalid JWT: unable to parse or verify signature, {e}"
        ) from None


def endpoint(
    handler: Handler, *, apikey: bool = True, user: bool = False
) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        ctx: AuthContext = request.app.state.auth
        try:
            request.app.state.gateway.check_apikey(
                request.headers, request.query_params, require=apikey
            )
        except GatewayError as e:
            return JSONResponse(e.kong_body(), status_code=e.status, headers=e.headers)
        try:
            body = await _body(request)
            claims = _claims(request) if user else None
            client = request.client.host if request.client else ""
            caller = Caller(client, request.headers.get("user-agent", ""), claims)
            return await handler(ctx, request, caller, body)
        except AuthError as e:
            return error_response(request, e)
        except OAuthError as e:
            return JSONResponse(e.body(), status_code=e.status)

    return run


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers=headers)


def _redirect_to(request: Request, body: dict[str, Any]) -> str | None:
    value = request.query_params.get("redirect_to") or body.get("redirect_to")
    return value if isinstance(value, str) and value else None


# ------------------------------------------------------------------ public


async def health(request: Request) -> Response:
    return _json(
        {
            "version": __version__,
            "name": "GoTrue",
            "description": "GoTrue is a user registration and authentication API",
        }
    )


async def settings(
    ctx: AuthContext, request: Request, caller: Caller, body: dict[str, Any]
) -> Response:
    a = ctx.auth
    external = {
        name: False
        for name in (
            "apple",
            "azure",
            "bitbucket",
            "discord",
            "facebook",
            "figma",
            "fly",
            "github",
            "gitlab",
            "google",
            "keycloak",
            "kakao",
            "linkedin",
            "linkedin_oidc",
            "notion",
            "spotify",
            "slack",
            "slack_oidc",
            "workos",
            "twitch",
            "twitter",
            "x",
            "zoom",
            "phone",
            "saml",
        )
    }
    external.update(
        {"email": a.email_enable_signup, "anonymous_users": a.enable_anonymous_sign_ins}
    )
    return _json(
        {
            "external": external,
            "disable_signup": not a.enable_signup,
            "mailer_autoconfirm": ctx.autoconfirm,
            "phone_autoconfirm": False,
            "sms_provider": "",
            "saml_enabled": False,
            "passkeys_enabled": False,
        }
    )


async def jwks(request: Request) -> Response:
    ctx: AuthContext = request.app.state.auth
    return _json(ctx.signer.jwks(), headers={"Cache-Control": "public, max-age=600"})


async def signup(
    ctx: AuthContext, request: Request, caller: Caller, body: dict[str, Any]
) -> Response:
    return _json(await flows.signup(ctx, body, caller, _redirect_to(request, body)))


async def token(
    ctx: AuthContext, request: Request, caller: Caller, body: dict[str, Any]
) -> Response:
    grant = request.query_params.get("grant_type", "")
    if grant == "password":
        return _json(await flows.password_grant(ctx, body, caller))
    if grant == "refresh_token":
        rt = body.get("refresh_token")
        out, headers = await sessions.refresh_grant(ctx, rt if isinstance(rt, str) else "", caller)
        return _json(out, headers=headers)
    if grant == "pkce":
        code, verifier = body.get("auth_code"), body.get("code_verifier")
        return _json(
            await sessions.pkce_grant(
                ctx,
                code if isinstance(code, str) else "",
                verifier if isinstance(verifier, str) else "",
                caller,
            )
        )
    raise AuthError(400, "invalid_credentials", "unsupported_grant_type")


async def otp(ctx: AuthContext, request: Request, caller: Caller, body: dict[str, Any]) -> Response:
    redirect = _redirect_to(request, body)
    return _json(await flows.otp(ctx, {**body, "redirect_to": redirect}, caller))


async def recover(
    ctx: AuthContext, request: Request, caller: Caller, body: dict[str, Any]
) -> Response:
    return _json(await flows.recover(ctx, body, caller, _redirect_to(request, body)))


async def resend(
    ctx: AuthContext, request: Request, caller: Caller, body: dict[str, Any]
) -> Response:
    return _json(await flows.resend(ctx, body, caller, _redirect_to(request, body)))


async def verify_endpoint(
    ctx: AuthContext, request: Request, caller: Caller, body: dict[str, Any]
) -> Response:
    if request.method == "GET":
        url = await verify.verify_get(ctx, request.query_params, caller)
        return RedirectResponse(url, status_code=303)
    return _json(await verify.verify_post(ctx, body, caller))


async def authorize(
    ctx: AuthContext, request: Request, caller: Caller, body: dict[str, Any]
) -> Response:
    provider = request.query_params.get("provider", "")
    raise AuthError(
        400,
        "validation_failed",
        f"Unsupported provider: provider {provider or '(none)'} is not enabled",
    )


# ------------------------------------------------------------------ the signed-in user


async def user(
    ctx: AuthContext, request: Request, caller: Caller, body: dict[str, Any]
) -> Response:
    if request.method == "GET":
        return _json(await account.get_user(ctx, caller))
    return _json(await account.update_user(ctx, body, caller, _redirect_to(request, body)))


async def logout(
    ctx: AuthContext, request: Request, caller: Caller, body: dict[str, Any]
) -> Response:
    await sessions.logout(ctx, request.query_params.get("scope", "global"), caller)
    return Response(status_code=204)


async def reauthenticate(
    ctx: AuthContext, request: Request, caller: Caller, body: dict[str, Any]
) -> Response:
    return _json(await flows.reauthenticate(ctx, caller))


async def factors(
    ctx: AuthContext, request: Request, caller: Caller, body: dict[str, Any]
) -> Response:
    return _json(await mfa.enroll(ctx, body, caller))


async def factor(
    ctx: AuthContext, request: Request, caller: Caller, body: dict[str, Any]
) -> Response:
    fid = request.path_params["factor_id"]
    action = request.path_params.get("action")
    if request.method == "DELETE":
        return _json(await mfa.unenroll(ctx, fid, caller))
    if action == "challenge":
        return _json(await mfa.challenge(ctx, fid, caller))
    if action == "verify":
        return _json(await mfa.verify(ctx, fid, body, caller))
    raise AuthError(404, "not_found", "Not Found")


# ------------------------------------------------------------------ admin


async def admin_users(
    ctx: AuthContext, request: Request, caller: Caller, body: dict[str, Any]
) -> Response:
    admin.require_admin(caller)
    if request.method == "GET":
        out, headers = await admin.list_users(ctx, request.query_params, request.url.path)
        return _json(out, headers=headers)
    return _json(await admin.create(ctx, body, caller))


async def admin_audit(
    ctx: AuthContext, request: Request, caller: Caller, body: dict[str, Any]
) -> Response:
    admin.require_admin(caller)
    out, headers = await admin.audit_log(ctx, request.query_params, request.url.path)
    return _json(out, headers=headers)


async def admin_user(
    ctx: AuthContext, request: Request, caller: Caller, body: dict[str, Any]
) -> Response:
    admin.require_admin(caller)
    uid = request.path_params["user_id"]
    if request.method == "GET":
        return _json(await admin.get_user(ctx, uid))
    if request.method == "PUT":
        return _json(await admin.update(ctx, uid, body, caller))
    return _json(await admin.delete(ctx, uid, body, caller))


async def admin_factors(
    ctx: AuthContext, request: Request, caller: Caller, body: dict[str, Any]
) -> Response:
    admin.require_admin(caller)
    uid = request.path_params["user_id"]
    fid = request.path_params.get("factor_id")
    if fid is None:
        return _json(await admin.factors(ctx, uid))
    return _json(await admin.delete_factor(ctx, uid, fid))


async def generate_link(
    ctx: AuthContext, request: Request, caller: Caller, body: dict[str, Any]
) -> Response:
    admin.require_admin(caller)
    return _json(await admin.generate_link(ctx, body, caller, _redirect_to(request, body)))


async def invite(
    ctx: AuthContext, request: Request, caller: Caller, body: dict[str, Any]
) -> Response:
    admin.require_admin(caller)
    return _json(await admin.invite(ctx, body, caller, _redirect_to(request, body)))


def _user(h: Handler) -> Callable[[Request], Awaitable[Response]]:
    return endpoint(h, user=True)


routes = [
    Route("/health", health, methods=["GET", "HEAD"]),
    Route("/settings", endpoint(settings), methods=["GET"]),
    Route("/.well-known/jwks.json", jwks, methods=["GET"]),
    Route("/signup", endpoint(signup), methods=["POST"]),
    Route("/token", endpoint(token), methods=["POST"]),
    Route("/otp", endpoint(otp), methods=["POST"]),
    Route("/magiclink", endpoint(otp), methods=["POST"]),
    Route("/recover", endpoint(recover), methods=["POST"]),
    Route("/resend", endpoint(resend), methods=["POST"]),
    Route("/verify", endpoint(verify_endpoint, apikey=False), methods=["GET", "POST"]),
    Route("/authorize", endpoint(authorize, apikey=False), methods=["GET"]),
    Route("/user", _user(user), methods=["GET", "PUT"]),
    Route("/logout", _user(logout), methods=["POST"]),
    Route("/reauthenticate", _user(reauthenticate), methods=["GET", "POST"]),
    Route("/factors", _user(factors), methods=["POST"]),
    Route("/factors/{factor_id}", _user(factor), methods=["DELETE"]),
    Route("/factors/{factor_id}/{action:str}", _user(factor), methods=["POST"]),
    Route("/admin/audit", _user(admin_audit), methods=["GET"]),
    Route("/admin/users", _user(admin_users), methods=["GET", "POST"]),
    Route("/admin/users/{user_id}", _user(admin_user), methods=["GET", "PUT", "DELETE"]),
    Route("/admin/users/{user_id}/factors", _user(admin_factors), methods=["GET"]),
    Route("/admin/users/{user_id}/factors/{factor_id}", _user(admin_factors), methods=["DELETE"]),
    Route("/admin/generate_link", _user(generate_link), methods=["POST"]),
    Route("/invite", _user(invite), methods=["POST"]),
]
