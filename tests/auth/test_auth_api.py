"""/auth/v1 over HTTP: the GoTrue shapes, sessions and refresh-token rotation, the email flows
through the built-in inbox, admin, MFA, hooks, and what bad input gets."""

from __future__ import annotations

import base64
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jwt
import pytest

from supalite.auth import totp
from tests.auth.conftest import (
    API_VERSION,
    AuthServer,
    code_in,
    fragment,
    link_in,
    query,
)


def claims_of(token: str) -> dict[str, Any]:
    out: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return out


def unique(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


# ------------------------------------------------------------------ public endpoints


def test_health_settings_and_jwks(auth: AuthServer) -> None:
    assert auth.http.get("/auth/v1/health").json()["name"] == "GoTrue"
    s = auth.call("GET", "/settings").json()
    assert s["external"]["email"] is True and s["external"]["anonymous_users"] is True
    assert s["mailer_autoconfirm"] is True and s["disable_signup"] is False
    r = auth.http.get("/auth/v1/.well-known/jwks.json")
    assert r.json() == {"keys": []}  # HS256 only: nothing public to publish
    assert r.headers["cache-control"] == "public, max-age=600"


def test_apikey_is_required_except_on_open_paths(auth: AuthServer) -> None:
    r = auth.http.post("/auth/v1/signup", json={"email": unique(), "password": "secret-pw-1"})
    assert r.status_code == 401 and r.json()["message"] == "No API key found in request"
    r = auth.http.post("/auth/v1/signup", json={}, headers={"apikey": "nope"})
    assert r.status_code == 401 and r.json()["message"] == "Invalid API key"
    r = auth.http.get("/auth/v1/verify", params={"type": "signup", "token": "x"})
    assert r.status_code == 303  # open, and an unknown token is an error redirect


# ------------------------------------------------------------------ sign-up and sign-in


def test_signup_returns_a_session_with_supabase_claims(auth: AuthServer) -> None:
    email = unique()
    s = auth.sign_up(email, data={"name": "Ada"})
    assert s["token_type"] == "bearer" and s["expires_in"] == 3600
    assert s["expires_at"] - time.time() > 3500
    user = s["user"]
    assert user["email"] == email and user["aud"] == "authenticated"
    assert user["user_metadata"] == {"name": "Ada"}
    assert user["app_metadata"] == {"provider": "email", "providers": ["email"]}
    assert user["identities"][0]["provider"] == "email"
    assert user["identities"][0]["identity_data"]["email"] == email
    assert user["email_confirmed_at"].endswith("Z") and user["is_anonymous"] is False
    c = claims_of(s["access_token"])
    assert c["sub"] == user["id"] and c["role"] == "authenticated" and c["aal"] == "aal1"
    assert c["aud"] == "authenticated" and c["email"] == email and c["is_anonymous"] is False
    assert c["iss"] == auth.url + "/auth/v1" and c["exp"] - c["iat"] == 3600
    assert [a["method"] for a in c["amr"]] == ["password"]
    assert c["user_metadata"] == {"name": "Ada"} and uuid.UUID(c["session_id"])
    rows = auth.sql(
        "select encrypted_password from auth.users where id = $1", uuid.UUID(user["id"])
    )
    assert rows[0]["encrypted_password"].startswith("$2a$10$")


def test_duplicate_signup_and_bad_credentials(auth: AuthServer) -> None:
    email = unique()
    auth.sign_up(email)
    r = auth.call("POST", "/signup", {"email": email, "password": "secret-pw-1"})
    assert r.status_code == 422 and r.json()["error_code"] == "user_already_exists"
    assert r.headers["x-sb-error-code"] == "user_already_exists"
    for body in (
        {"email": email, "password": "wrong-pw"},
        {"email": unique("nobody"), "password": "secret-pw-1"},
    ):
        r = auth.call("POST", "/token", body, params={"grant_type": "password"})
        assert r.status_code == 400
        assert r.json() == {
            "code": 400,
            "error_code": "invalid_credentials",
            "msg": "Invalid login credentials",
        }


def test_versioned_error_shape(auth: AuthServer) -> None:
    r = auth.call(
        "POST",
        "/token",
        {"email": unique(), "password": "x"},
        params={"grant_type": "password"},
        headers=API_VERSION,
    )
    assert r.json() == {"code": "invalid_credentials", "message": "Invalid login credentials"}
    assert r.headers["x-supabase-api-version"] == "2024-01-01"


def test_weak_passwords(auth_server_factory: Any) -> None:
    strict = auth_server_factory(
        lambda t: t.replace(
            "minimum_password_length = 6",
            'minimum_password_length = 8\npassword_requirements = "lower_upper_letters_digits"',
        )
    )
    r = strict.call("POST", "/signup", {"email": unique(), "password": "short"})
    assert r.status_code == 422
    body = r.json()
    assert body["error_code"] == "weak_password"
    assert body["weak_password"]["reasons"] == ["length", "characters"]
    r = strict.call("POST", "/signup", {"email": unique(), "password": "x" * 73 + "A1"})
    assert r.status_code == 400 and "72" in r.json()["msg"]
    assert strict.sign_up(unique(), "Abcdefg1")["access_token"]


def test_signup_and_anonymous_switches(auth_server_factory: Any) -> None:
    closed = auth_server_factory(
        lambda t: t.replace("enable_signup = true", "enable_signup = false", 1).replace(
            "enable_anonymous_sign_ins = true", "enable_anonymous_sign_ins = false"
        )
    )
    r = closed.call("POST", "/signup", {"email": unique(), "password": "secret-pw-1"})
    assert r.status_code == 422 and r.json()["error_code"] == "signup_disabled"
    r = closed.call("POST", "/signup", {})
    assert r.status_code == 422  # signups off wins; anonymous is off too


def test_anonymous_sign_in_then_link_an_email(auth: AuthServer) -> None:
    r = auth.call("POST", "/signup", {"data": {"tier": "free"}})
    s = r.json()
    assert r.status_code == 200 and s["user"]["is_anonymous"] is True
    assert s["user"]["email"] == "" and s["user"]["identities"] == []
    c = claims_of(s["access_token"])
    assert c["is_anonymous"] is True and c["amr"][0]["method"] == "anonymous"
    r = auth.call("PUT", "/user", {"password": "secret-pw-1"}, token=s["access_token"])
    assert r.status_code == 422
    email = unique("linked")
    r = auth.call("PUT", "/user", {"email": email}, token=s["access_token"])
    assert r.status_code == 200, r.text
    u = r.json()
    assert u["email"] == email and u["is_anonymous"] is False
    assert u["app_metadata"]["provider"] == "email"
    r = auth.call("PUT", "/user", {"password": "secret-pw-2"}, token=s["access_token"])
    assert r.status_code == 200
    assert auth.sign_in(email, "secret-pw-2")["user"]["id"] == u["id"]


# ------------------------------------------------------------------ the user and sessions


def test_get_and_update_user(auth: AuthServer) -> None:
    s = auth.sign_up(unique(), data={"a": 1, "b": 2})
    token = s["access_token"]
    r = auth.call("PUT", "/user", {"data": {"b": None, "c": 3}}, token=token)
    assert r.json()["user_metadata"] == {"a": 1, "c": 3}
    assert auth.call("GET", "/user", token=token).json()["user_metadata"] == {"a": 1, "c": 3}
    r = auth.call("PUT", "/user", {"app_metadata": {"plan": "pro"}}, token=token)
    assert r.status_code == 403 and r.json()["error_code"] == "not_admin"
    r = auth.call("PUT", "/user", {"password": "secret-pw-1"}, token=token)
    assert r.status_code == 422 and r.json()["error_code"] == "same_password"
    r = auth.call("GET", "/user")  # the anon key's token has no subject
    assert r.status_code == 403 and r.json()["error_code"] == "bad_jwt"
    r = auth.call("GET", "/user", token="not.a.jwt")
    assert r.status_code == 403 and r.json()["error_code"] == "bad_jwt"


def test_refresh_rotation_and_reuse(auth_server_factory: Any) -> None:
    srv = auth_server_factory(
        lambda t: t.replace("refresh_token_reuse_interval = 10", "refresh_token_reuse_interval = 1")
    )
    s = srv.sign_up(unique())
    first = s["refresh_token"]
    r = srv.refresh(first)
    assert r.status_code == 200
    second = r.json()["refresh_token"]
    assert (
        second != first
        and r.headers["sb-auth-session-id"] == claims_of(s["access_token"])["session_id"]
    )
    # The parent of the active token again (a retry): the active token, not a new branch.
    r = srv.refresh(first)
    assert r.status_code == 200 and r.json()["refresh_token"] == second
    third = srv.refresh(second).json()["refresh_token"]
    time.sleep(1.5)  # past the reuse interval: reusing `first` now revokes the family
    r = srv.refresh(first)
    assert r.status_code == 400 and r.json()["error_code"] == "refresh_token_already_used"
    r = srv.refresh(third)
    assert r.status_code == 400 and r.json()["error_code"] == "refresh_token_already_used"
    r = srv.refresh("no-such-token")
    assert r.status_code == 400 and r.json()["error_code"] == "refresh_token_not_found"
    r = srv.call("POST", "/token", {}, params={"grant_type": "refresh_token"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


def test_concurrent_refreshes_of_one_token_rotate_it_once(auth: AuthServer) -> None:
    """Eight clients present the same live token at once (tabs racing after a wake-up): the
    token rotates once and every client gets that one child; each grant is audited, as
    GoTrue audits a retry that is answered with the active token."""
    s = auth.sign_up(unique())
    token = s["refresh_token"]
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: auth.refresh(token), range(8)))
    assert [r.status_code for r in responses] == [200] * 8
    assert len({r.json()["refresh_token"] for r in responses}) == 1
    children = auth.sql("select token from auth.refresh_tokens where parent = $1", token)
    assert [c["token"] for c in children] == [responses[0].json()["refresh_token"]]
    rows = auth.sql(
        "select payload->>'actor_username' as who from auth.audit_log_entries"
        " where payload->>'action' = 'token_refreshed' and payload->>'actor_id' = $1",
        s["user"]["id"],
    )
    assert [r["who"] for r in rows] == [s["user"]["email"]] * 8


def test_admin_audit_log_search_and_pages(auth: AuthServer) -> None:
    email = unique("audited")
    s = auth.sign_up(email)
    auth.refresh(s["refresh_token"])
    r = auth.admin("GET", "/admin/audit", params={"query": f"author:{email}", "per_page": 1})
    assert r.status_code == 200, r.text
    assert r.headers["X-Total-Count"] == "3"  # sign-up, login, refresh
    assert 'rel="next"' in r.headers["Link"] and 'rel="last"' in r.headers["Link"]
    (newest,) = r.json()
    assert newest["payload"]["action"] == "token_refreshed"
    assert newest["payload"]["actor_id"] == s["user"]["id"] and newest["created_at"]
    r = auth.admin(
        "GET", "/admin/audit", params={"query": f"author:{email}", "per_page": 2, "page": 2}
    )
    assert [e["payload"]["action"] for e in r.json()] == ["user_signedup"]
    r = auth.admin("GET", "/admin/audit", params={"query": "type:token"})
    assert r.status_code == 200 and all(e["payload"]["log_type"] == "token" for e in r.json())
    r = auth.admin("GET", "/admin/audit", params={"query": "actor_id:x"})
    assert r.status_code == 400 and r.json()["error_code"] == "validation_failed"
    r = auth.admin("GET", "/admin/audit", params={"page": "x"})
    assert r.status_code == 400
    r = auth.call("GET", "/admin/audit", token=s["access_token"])
    assert r.status_code == 403


def test_logout_scopes(auth: AuthServer) -> None:
    email = unique()
    a = auth.sign_up(email)
    b = auth.sign_in(email)
    c = auth.sign_in(email)
    r = auth.call("POST", "/logout", params={"scope": "others"}, token=a["access_token"])
    assert r.status_code == 204
    assert auth.refresh(b["refresh_token"]).status_code == 400
    assert auth.refresh(c["refresh_token"]).status_code == 400
    assert auth.call("GET", "/user", token=a["access_token"]).status_code == 200
    r = auth.call("POST", "/logout", params={"scope": "local"}, token=a["access_token"])
    assert r.status_code == 204
    r = auth.call("GET", "/user", token=a["access_token"])
    assert r.status_code == 403 and r.json()["error_code"] == "session_not_found"
    d, e = auth.sign_in(email), auth.sign_in(email)
    auth.call("POST", "/logout", token=d["access_token"])  # default: global
    assert auth.refresh(e["refresh_token"]).json()["error_code"] == "refresh_token_not_found"
    r = auth.call("POST", "/logout", params={"scope": "everything"}, token=e["access_token"])
    assert r.status_code == 400


def test_banned_and_deleted_users_cannot_refresh(auth: AuthServer) -> None:
    s = auth.sign_up(unique())
    uid = s["user"]["id"]
    s2 = auth.sign_in(s["user"]["email"])
    r = auth.admin("PUT", f"/admin/users/{uid}", {"ban_duration": "24h"})
    assert r.status_code == 200 and r.json()["banned_until"]
    assert auth.refresh(s["refresh_token"]).status_code == 400
    r = auth.call(
        "POST",
        "/token",
        {"email": s["user"]["email"], "password": "secret-pw-1"},
        params={"grant_type": "password"},
    )
    assert r.json()["error_code"] == "user_banned"
    auth.admin("PUT", f"/admin/users/{uid}", {"ban_duration": "none"})
    s3 = auth.sign_in(s["user"]["email"])
    assert auth.admin("DELETE", f"/admin/users/{uid}").status_code == 200
    assert auth.refresh(s3["refresh_token"]).json()["error_code"] == "refresh_token_not_found"
    assert auth.refresh(s2["refresh_token"]).status_code == 400


# ------------------------------------------------------------------ email flows


def test_confirmation_link_implicit_flow(confirming: AuthServer) -> None:
    email = unique()
    body = confirming.sign_up(email)
    assert "access_token" not in body and body["email"] == email
    assert body.get("confirmation_sent_at") and "email_confirmed_at" not in body
    r = confirming.call(
        "POST",
        "/token",
        {"email": email, "password": "secret-pw-1"},
        params={"grant_type": "password"},
    )
    assert r.json()["error_code"] == "email_not_confirmed"
    mail = confirming.last_mail(email)
    assert mail["subject"] == "Confirm Your Signup"
    link = link_in(mail)
    r = confirming.http.get(link.replace(confirming.url, ""))
    assert r.status_code == 303
    frag = fragment(r.headers["location"])
    assert r.headers["location"].startswith("http://127.0.0.1:3000#")
    assert frag["type"] == "signup" and frag["token_type"] == "bearer"
    assert claims_of(frag["access_token"])["email"] == email
    # The link is single-use.
    r = confirming.http.get(link.replace(confirming.url, ""))
    assert fragment(r.headers["location"])["error_code"] == "otp_expired"
    assert confirming.sign_in(email)["user"]["email_confirmed_at"]


def test_repeated_signup_of_a_confirmed_address_does_not_reveal_it(confirming: AuthServer) -> None:
    email = unique()
    confirming.sign_up(email)
    code = code_in(confirming.last_mail(email))
    r = confirming.call("POST", "/verify", {"type": "signup", "email": email, "token": code})
    assert r.status_code == 200 and r.json()["access_token"]
    real = r.json()["user"]["id"]
    again = confirming.sign_up(email, "another-pw-1")
    assert again["email"] == email and again["id"] != real and "access_token" not in again


def test_otp_code_and_magic_link(confirming: AuthServer) -> None:
    email = unique()
    confirming.sign_up(email)
    confirming.call(
        "POST",
        "/verify",
        {"type": "signup", "email": email, "token": code_in(confirming.last_mail(email))},
    )
    time.sleep(1.1)  # max_frequency
    r = confirming.call(
        "POST",
        "/otp",
        {"email": email, "create_user": False},
        params={"redirect_to": "https://evil.example/steal"},
    )
    assert r.status_code == 200 and r.json() == {}
    mail = confirming.last_mail(email)
    assert mail["subject"] == "Your Magic Link"
    assert "evil.example" not in mail["text"]  # not on the allow-list: site_url instead
    r = confirming.call("POST", "/verify", {"type": "email", "email": email, "token": "000000"})
    assert r.status_code == 403 and r.json()["error_code"] == "otp_expired"
    r = confirming.call(
        "POST", "/verify", {"type": "email", "email": email, "token": code_in(mail)}
    )
    assert r.status_code == 200
    assert [a["method"] for a in claims_of(r.json()["access_token"])["amr"]] == ["otp"]
    r = confirming.call("POST", "/otp", {"email": email})
    assert r.status_code == 429 and r.json()["error_code"] == "over_email_send_rate_limit"
    r = confirming.call("POST", "/otp", {"email": unique("new"), "create_user": False})
    assert r.status_code == 422 and r.json()["error_code"] == "otp_disabled"


def test_recovery_then_new_password(confirming: AuthServer) -> None:
    email = unique()
    confirming.sign_up(email)
    confirming.call(
        "POST",
        "/verify",
        {"type": "signup", "email": email, "token": code_in(confirming.last_mail(email))},
    )
    assert confirming.call("POST", "/recover", {"email": unique("ghost")}).json() == {}
    r = confirming.call(
        "POST", "/recover", {"email": email}, params={"redirect_to": "https://127.0.0.1:3000/reset"}
    )
    assert r.status_code == 200
    mail = confirming.last_mail(email)
    assert mail["subject"] == "Reset Your Password"
    r = confirming.http.get(link_in(mail).replace(confirming.url, ""))
    loc = r.headers["location"]
    assert loc.startswith("https://127.0.0.1:3000/reset#") and fragment(loc)["type"] == "recovery"
    token = fragment(loc)["access_token"]
    r = confirming.call("PUT", "/user", {"password": "brand-new-pw"}, token=token)
    assert r.status_code == 200
    assert confirming.sign_in(email, "brand-new-pw")["access_token"]


def test_email_change_needs_both_addresses(confirming: AuthServer) -> None:
    old, new = unique("old"), unique("new")
    confirming.sign_up(old)
    r = confirming.call(
        "POST",
        "/verify",
        {"type": "signup", "email": old, "token": code_in(confirming.last_mail(old))},
    )
    token = r.json()["access_token"]
    r = confirming.call("PUT", "/user", {"email": new}, token=token)
    assert r.status_code == 200 and r.json()["new_email"] == new and r.json()["email"] == old
    to_new, to_old = confirming.last_mail(new), confirming.last_mail(old)
    assert to_new["subject"] == to_old["subject"] == "Confirm Email Change"
    r = confirming.call(
        "POST", "/verify", {"type": "email_change", "email": new, "token": code_in(to_new)}
    )
    assert r.status_code == 200 and r.json()["msg"].startswith("Confirmation link accepted")
    r = confirming.http.get(link_in(to_old).replace(confirming.url, ""))
    frag = fragment(r.headers["location"])
    assert frag["type"] == "email_change"
    user = confirming.call("GET", "/user", token=frag["access_token"]).json()
    assert user["email"] == new and "new_email" not in user
    assert confirming.sign_in(new)["user"]["id"] == user["id"]


def test_pkce_signup_confirmation_and_code_exchange(confirming: AuthServer) -> None:
    verifier = base64.urlsafe_b64encode(b"v" * 48).decode().rstrip("=")
    import hashlib

    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode()
    challenge = challenge.rstrip("=")
    email = unique("pkce")
    confirming.sign_up(email, code_challenge=challenge, code_challenge_method="s256")
    link = link_in(confirming.last_mail(email))
    assert "token=pkce_" in link
    r = confirming.http.get(link.replace(confirming.url, ""))
    code = query(r.headers["location"])["code"]
    r = confirming.call(
        "POST",
        "/token",
        {"auth_code": code, "code_verifier": "wrong" * 10},
        params={"grant_type": "pkce"},
    )
    assert r.status_code == 403 and r.json()["error_code"] == "bad_code_verifier"
    r = confirming.call(
        "POST",
        "/token",
        {"auth_code": code, "code_verifier": verifier},
        params={"grant_type": "pkce"},
    )
    assert r.status_code == 200 and r.json()["user"]["email"] == email
    r = confirming.call(
        "POST",
        "/token",
        {"auth_code": code, "code_verifier": verifier},
        params={"grant_type": "pkce"},
    )
    assert r.status_code == 404 and r.json()["error_code"] == "flow_state_not_found"


def test_reauthentication_nonce_for_password_change(auth_server_factory: Any) -> None:
    srv = auth_server_factory(
        lambda t: t.replace("max_frequency", "secure_password_change = true\nmax_frequency")
    )
    email = unique()
    s = srv.sign_up(email)
    uid = uuid.UUID(s["user"]["id"])
    # A session younger than a day changes the password freely, as GoTrue allows.
    r = srv.call("PUT", "/user", {"password": "second-pw-1"}, token=s["access_token"])
    assert r.status_code == 200
    srv.sql(
        "update auth.sessions set created_at = now() - interval '2 days' where user_id = $1", uid
    )
    r = srv.call("PUT", "/user", {"password": "third-pw-1"}, token=s["access_token"])
    assert r.status_code == 400 and r.json()["error_code"] == "reauthentication_needed"
    assert srv.call("GET", "/reauthenticate", token=s["access_token"]).status_code == 200
    nonce = code_in(srv.last_mail(email))
    r = srv.call(
        "PUT", "/user", {"password": "third-pw-1", "nonce": "000000"}, token=s["access_token"]
    )
    assert r.status_code == 400 and r.json()["error_code"] == "reauthentication_not_valid"
    r = srv.call(
        "PUT", "/user", {"password": "third-pw-1", "nonce": nonce}, token=s["access_token"]
    )
    assert r.status_code == 200
    assert srv.sign_in(email, "third-pw-1")


# ------------------------------------------------------------------ admin


def test_admin_users_crud_and_pagination(auth: AuthServer) -> None:
    for _ in range(2):  # enough users for two pages, whichever tests ran before
        auth.sign_up(unique())
    email = unique("admin-made")
    r = auth.admin(
        "POST",
        "/admin/users",
        {
            "email": email,
            "password": "secret-pw-1",
            "email_confirm": True,
            "user_metadata": {"n": 1},
            "app_metadata": {"plan": "pro"},
        },
    )
    assert r.status_code == 200, r.text
    u = r.json()
    assert u["email_confirmed_at"] and u["app_metadata"]["plan"] == "pro"
    assert (
        auth.admin("POST", "/admin/users", {"email": email}).json()["error_code"] == "email_exists"
    )
    assert claims_of(auth.sign_in(email)["access_token"])["app_metadata"]["plan"] == "pro"
    r = auth.admin(
        "PUT",
        f"/admin/users/{u['id']}",
        {"user_metadata": {"m": 2}, "app_metadata": {"plan": None}},
    )
    assert r.json()["user_metadata"] == {"n": 1, "m": 2} and "plan" not in r.json()["app_metadata"]
    assert auth.admin("GET", f"/admin/users/{u['id']}").json()["email"] == email
    r = auth.admin("GET", "/admin/users", params={"page": 1, "per_page": 2})
    assert len(r.json()["users"]) == 2 and r.json()["aud"] == "authenticated"
    total = int(r.headers["x-total-count"])
    assert total >= 3 and 'rel="next"' in r.headers["link"] and 'rel="last"' in r.headers["link"]
    assert auth.admin("GET", f"/admin/users/{uuid.uuid4()}").status_code == 404
    assert auth.admin("GET", "/admin/users/not-a-uuid").status_code == 404
    r = auth.admin("DELETE", f"/admin/users/{u['id']}", {"should_soft_delete": True})
    assert r.status_code == 200
    soft = auth.admin("GET", f"/admin/users/{u['id']}").json()
    assert soft["deleted_at"] and soft["email"] != email
    r = auth.call(
        "POST",
        "/token",
        {"email": email, "password": "secret-pw-1"},
        params={"grant_type": "password"},
    )
    assert r.json()["error_code"] == "invalid_credentials"


def test_admin_needs_the_service_role(auth: AuthServer) -> None:
    s = auth.sign_up(unique())
    for token in (None, s["access_token"]):
        r = auth.call("GET", "/admin/users", token=token)
        assert r.status_code == 403 and r.json()["error_code"] in ("not_admin", "bad_jwt")
    keys = auth.server.info
    r = auth.call("GET", "/admin/users", key=keys["Secret key"])  # sb_secret_ works as Kong maps it
    assert r.status_code == 200


def test_generate_link_and_invite(auth: AuthServer) -> None:
    email = unique("linked")
    r = auth.admin("POST", "/admin/generate_link", {"type": "magiclink", "email": email})
    body = r.json()
    assert r.status_code == 200 and body["verification_type"] == "signup" and body["email"] == email
    assert body["action_link"].startswith(auth.url + "/auth/v1/verify?token=")
    r = auth.call("POST", "/verify", {"type": "signup", "email": email, "token": body["email_otp"]})
    assert r.status_code == 200
    invited = unique("invited")
    r = auth.admin("POST", "/invite", {"email": invited, "data": {"team": "x"}})
    assert r.status_code == 200 and r.json()["invited_at"]
    mail = auth.last_mail(invited)
    assert mail["subject"] == "You have been invited"
    r = auth.http.get(link_in(mail).replace(auth.url, ""))
    frag = fragment(r.headers["location"])
    assert frag["type"] == "invite"
    r = auth.call("PUT", "/user", {"password": "chosen-pw-1"}, token=frag["access_token"])
    assert r.status_code == 200
    assert auth.sign_in(invited, "chosen-pw-1")["user"]["user_metadata"] == {"team": "x"}


# ------------------------------------------------------------------ MFA


def test_totp_enroll_challenge_verify_and_aal2(auth: AuthServer) -> None:
    s = auth.sign_up(unique())
    token = s["access_token"]
    r = auth.call(
        "POST", "/factors", {"factor_type": "totp", "friendly_name": "phone"}, token=token
    )
    assert r.status_code == 200, r.text
    f = r.json()
    assert f["type"] == "totp" and f["totp"]["qr_code"].startswith("<svg")
    assert f["totp"]["uri"].startswith("otpauth://totp/") and f["totp"]["secret"]
    r = auth.call(
        "POST", "/factors", {"factor_type": "totp", "friendly_name": "phone"}, token=token
    )
    assert r.json()["error_code"] == "mfa_factor_name_conflict"
    ch = auth.call("POST", f"/factors/{f['id']}/challenge", token=token).json()
    r = auth.call(
        "POST",
        f"/factors/{f['id']}/verify",
        {
            "challenge_id": ch["id"],
            "code": "000000"
            if totp.code_at(f["totp"]["secret"], int(time.time() // 30)) != "000000"
            else "111111",
        },
        token=token,
    )
    assert r.status_code == 422 and r.json()["error_code"] == "mfa_verification_failed"
    code = totp.code_at(f["totp"]["secret"], int(time.time() // 30))
    r = auth.call(
        "POST", f"/factors/{f['id']}/verify", {"challenge_id": ch["id"], "code": code}, token=token
    )
    assert r.status_code == 200, r.text
    up = r.json()
    c = claims_of(up["access_token"])
    assert c["aal"] == "aal2" and {a["method"] for a in c["amr"]} == {"password", "totp"}
    assert up["user"]["factors"][0]["status"] == "verified"
    # The upgraded session stays aal2 across refreshes; the old aal1 token can't unenroll.
    r = auth.refresh(up["refresh_token"])
    assert claims_of(r.json()["access_token"])["aal"] == "aal2"
    r = auth.call("DELETE", f"/factors/{f['id']}", token=token)
    assert r.status_code == 401 and r.json()["error_code"] == "insufficient_aal"
    r = auth.call("PUT", "/user", {"password": "changed-pw-1"}, token=token)
    assert r.status_code == 401 and r.json()["error_code"] == "insufficient_aal"
    listed = auth.admin("GET", f"/admin/users/{s['user']['id']}/factors").json()
    assert [x["id"] for x in listed] == [f["id"]]
    r = auth.call("DELETE", f"/factors/{f['id']}", token=up["access_token"])
    assert r.status_code == 200 and r.json() == {"id": f["id"]}


# ------------------------------------------------------------------ hostile input


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/signup", b"{not json", 400, "bad_json"),
        ("/signup", b"[1, 2]", 400, "bad_json"),
        ("/signup", b'{"email": 12, "password": "secret-pw-1"}', 400, "bad_json"),
        (
            "/signup",
            b'{"email": "a@b.co", "password": "secret-pw-1", "data": "x"}',
            400,
            "bad_json",
        ),
        (
            "/signup",
            b'{"email": "not-an-email", "password": "secret-pw-1"}',
            400,
            "validation_failed",
        ),
        (
            "/signup",
            '{"email": "аdmin@example.com", "password": "secret-pw-1"}'.encode(),
            400,
            "validation_failed",
        ),  # Cyrillic а: a look-alike address is refused
        (
            "/signup",
            b'{"email": "' + b"a" * 300 + b'@x.io", "password": "pw-123456"}',
            400,
            "validation_failed",
        ),
        ("/signup", b'{"email": "a@b.co"}', 400, "validation_failed"),
        ("/verify", b'{"type": "signup"}', 400, "validation_failed"),
        ("/verify", b'{"type": "bogus", "token_hash": "x"}', 400, "validation_failed"),
        ("/otp", b'{"email": "a@b.co", "create_user": "yes"}', 400, "bad_json"),
        ("/signup", b"{" + b'"x": "' + b"y" * (1 << 20) + b'"}', 413, "request_entity_too_large"),
    ],
)
def test_bad_input_is_a_clear_4xx(
    auth: AuthServer, path: str, body: bytes, status: int, code: str
) -> None:
    before = auth.sql("select count(*) as n from auth.users")[0]["n"]
    r = auth.http.post(
        "/auth/v1" + path,
        content=body,
        headers={"apikey": auth.anon, "Content-Type": "application/json"},
    )
    assert r.status_code == status, r.text
    assert r.json()["error_code"] == code
    assert auth.sql("select count(*) as n from auth.users")[0]["n"] == before


def test_unknown_grant_and_token_garbage(auth: AuthServer) -> None:
    r = auth.call("POST", "/token", {}, params={"grant_type": "magic"})
    assert r.status_code == 400 and r.json()["error_code"] == "invalid_credentials"
    r = auth.call(
        "POST", "/token", {"auth_code": "x", "code_verifier": "y"}, params={"grant_type": "pkce"}
    )
    assert r.status_code == 404


def test_audit_log_records_security_events(auth: AuthServer) -> None:
    email = unique("audited")
    s = auth.sign_up(email)
    auth.refresh(s["refresh_token"])
    auth.call("POST", "/logout", token=s["access_token"])
    rows = auth.sql(
        "select payload->>'action' as action from auth.audit_log_entries"
        " where payload->>'actor_username' = $1 order by created_at",
        email,
    )
    actions = [r["action"] for r in rows]
    for expected in ("user_signedup", "login", "token_refreshed", "logout"):
        assert expected in actions
