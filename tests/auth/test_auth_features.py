"""Auth configured beyond the defaults: asymmetric signing keys, the custom access token hook,
rate limits, delivery through a real SMTP server, and the profiles-trigger pattern."""

from __future__ import annotations

import email
import email.policy
import json
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest
from aiosmtpd.controller import Controller
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tests.auth.conftest import AuthServer, confirmations_on
from tests.helpers import free_port


def unique(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def _new_key(alg: str) -> Any:
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_asymmetric_signing_keys_are_used_published_and_trusted(
    alg: str,
    auth_server_factory: Callable[..., AuthServer],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    algorithm = ECAlgorithm if alg == "ES256" else RSAAlgorithm
    jwk = json.loads(algorithm.to_jwk(_new_key(alg)))
    jwk.update({"kid": f"test-{alg}", "alg": alg})
    keyfile = tmp_path_factory.mktemp("keys") / "signing_keys.json"
    keyfile.write_text(json.dumps([jwk]))
    srv = auth_server_factory(
        lambda t: t.replace(
            "jwt_expiry = 3600", f'jwt_expiry = 3600\nsigning_keys_path = "{keyfile}"'
        )
    )
    s = srv.sign_up(unique())
    header = jwt.get_unverified_header(s["access_token"])
    assert header["alg"] == alg and header["kid"] == f"test-{alg}"
    published = srv.http.get("/auth/v1/.well-known/jwks.json").json()["keys"]
    assert [k["kid"] for k in published] == [f"test-{alg}"]
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(published[0])  # no private parts
    key = jwt.PyJWK(published[0]).key
    claims = jwt.decode(s["access_token"], key, algorithms=[alg], audience="authenticated")
    assert claims["sub"] == s["user"]["id"]
    # The gateway accepts it for the other services, and still refuses a forged one.
    r = srv.http.get(
        "/rest/v1/", headers={"apikey": srv.anon, "Authorization": f"Bearer {s['access_token']}"}
    )
    assert r.status_code == 200
    assert srv.call("GET", "/user", token=s["access_token"]).status_code == 200
    refreshed = srv.refresh(s["refresh_token"]).json()["access_token"]
    assert jwt.decode(refreshed, key, algorithms=[alg], audience="authenticated")["sub"]
    forged = jwt.encode(claims, _new_key(alg), algorithm=alg, headers={"kid": f"test-{alg}"})
    r = srv.http.get("/rest/v1/", headers={"apikey": srv.anon, "Authorization": f"Bearer {forged}"})
    assert r.status_code == 401


HOOK = """
create or replace function public.custom_access_token_hook(event jsonb) returns jsonb
language plpgsql stable as $$
declare
  claims jsonb := event->'claims';
begin
  if (event->'claims'->>'email') like 'blocked-%' then
    return jsonb_build_object('error', jsonb_build_object('http_code', 403,
                                                          'message', 'blocked by hook'));
  end if;
  claims := jsonb_set(claims, '{user_role}', to_jsonb('editor'::text));
  claims := jsonb_set(claims, '{method}', to_jsonb(event->>'authentication_method'));
  return jsonb_build_object('claims', claims);
end $$;
"""


REFUSE_REFRESH = """
create or replace function public.custom_access_token_hook(event jsonb) returns jsonb
language plpgsql as $$
begin
  if event->>'authentication_method' = 'token_refresh' then
    raise exception 'refreshes are refused';
  end if;
  return jsonb_build_object('claims', event->'claims');
end $$;
"""


def test_custom_access_token_hook(auth_server_factory: Callable[..., AuthServer]) -> None:
    srv = auth_server_factory(
        lambda t: (
            t
            + (
                "\n[auth.hook.custom_access_token]\nenabled = true\n"
                'uri = "pg-functions://postgres/public/custom_access_token_hook"\n'
            )
        )
    )
    srv.script(HOOK)
    s = srv.sign_up(unique())
    claims = jwt.decode(s["access_token"], options={"verify_signature": False})
    assert claims["user_role"] == "editor" and claims["method"] == "password"
    refreshed = srv.refresh(s["refresh_token"]).json()
    claims = jwt.decode(refreshed["access_token"], options={"verify_signature": False})
    assert claims["user_role"] == "editor" and claims["method"] == "token_refresh"
    r = srv.call("POST", "/signup", {"email": unique("blocked"), "password": "secret-pw-1"})
    assert r.status_code == 403 and r.json()["msg"] == "blocked by hook"
    # A hook that fails a refresh leaves the presented token live: nothing rotated.
    live = refreshed["refresh_token"]
    srv.script(REFUSE_REFRESH)
    r = srv.refresh(live)
    assert r.status_code == 500
    assert (
        srv.sql("select count(*) as n from auth.refresh_tokens where parent = $1", live)[0][0] == 0
    )
    srv.script(HOOK)
    r = srv.refresh(live)
    assert r.status_code == 200 and r.json()["refresh_token"] != live
    srv.script(
        "create or replace function public.custom_access_token_hook(event jsonb) returns"
        " jsonb language sql as $$ select jsonb_build_object('claims', '{}'::jsonb) $$"
    )
    r = srv.call("POST", "/signup", {"email": unique(), "password": "secret-pw-1"})
    assert r.status_code == 500 and "claims" in r.json()["msg"]


def test_rate_limits_answer_429(auth_server_factory: Callable[..., AuthServer]) -> None:
    srv = auth_server_factory(lambda t: t + "\n[auth.rate_limit]\nsign_in_sign_ups = 3\n")
    email = unique()
    srv.sign_up(email)
    codes = []
    for _ in range(3):
        r = srv.call(
            "POST",
            "/token",
            {"email": email, "password": "secret-pw-1"},
            params={"grant_type": "password"},
        )
        codes.append(r.status_code)
    assert codes == [200, 200, 429]
    assert r.json()["error_code"] == "over_request_rate_limit"


def test_failed_sign_ins_are_limited_per_address(
    auth_server_factory: Callable[..., AuthServer],
) -> None:
    """Guesses at one address from many IPs: after the limit, that address is refused (even
    with the right password) while other addresses still sign in; successes take nothing."""
    srv = auth_server_factory(lambda t: t + "\n[auth.rate_limit]\nsign_in_sign_ups = 3\n")
    target, other = unique(), unique()
    srv.sign_up(target)
    srv.sign_up(other)

    def attempt(email: str, password: str, ip: str) -> int:
        r = srv.call(
            "POST",
            "/token",
            {"email": email, "password": password},
            params={"grant_type": "password"},
            headers={"X-Forwarded-For": ip},
        )
        return r.status_code

    assert attempt(target, "secret-pw-1", "10.0.0.1") == 200
    assert attempt(target.upper(), "secret-pw-1", "10.0.0.2") == 200
    assert [attempt(target, "guess", f"10.0.1.{i}") for i in range(4)] == [400, 400, 400, 429]
    assert attempt(target, "secret-pw-1", "10.0.2.1") == 429
    assert attempt(target.upper(), "secret-pw-1", "10.0.2.2") == 429
    assert attempt(other, "secret-pw-1", "10.0.2.3") == 200


class Catch:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)  # type: ignore[arg-type]
        )
        return "250 OK"


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Catch, int]]:
    catch = Catch()
    port = free_port()
    controller = Controller(catch, hostname="127.0.0.1", port=port)
    controller.start()
    yield catch, port
    controller.stop()


def test_confirmation_through_a_real_smtp_server(
    auth_server_factory: Callable[..., AuthServer], smtp: tuple[Catch, int]
) -> None:
    catch, port = smtp
    srv = auth_server_factory(
        lambda t: (
            confirmations_on(t)
            + (
                f'\n[auth.email.smtp]\nenabled = true\nhost = "127.0.0.1"\nport = {port}\n'
                'admin_email = "noreply@example.com"\nsender_name = "Example"\n'
            )
        )
    )
    email_addr = unique("smtp")
    srv.sign_up(email_addr)
    assert srv.inbox(email_addr) == []  # real SMTP configured: nothing in the built-in inbox
    msg = next(m for m in catch.messages if m["To"] == email_addr)
    assert msg["Subject"] == "Confirm Your Signup" and "noreply@example.com" in msg["From"]
    text = msg.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    link = re.search(r"http://\S+/auth/v1/verify\?\S+", text).group(0)  # type: ignore[union-attr]
    r = srv.http.get(link.replace(srv.url, ""))
    assert r.status_code == 303 and "access_token=" in r.headers["location"]


def test_profiles_trigger_and_rls_with_an_auth_session(auth: AuthServer) -> None:
    auth.script("""
      create table public.profiles (id uuid primary key references auth.users (id)
                                      on delete cascade, username text);
      alter table public.profiles enable row level security;
      create policy "own profile" on public.profiles for all to authenticated
        using (id = auth.uid()) with check (id = auth.uid());
      create function public.handle_new_user() returns trigger language plpgsql
        security definer set search_path = '' as $$
      begin
        insert into public.profiles (id, username)
          values (new.id, new.raw_user_meta_data->>'username');
        return new;
      end $$;
      create trigger on_auth_user_created after insert on auth.users
        for each row execute procedure public.handle_new_user();
    """)
    a = auth.sign_up(unique(), data={"username": "ann"})
    b = auth.sign_up(unique(), data={"username": "ben"})

    def profiles(token: str) -> Any:
        r = auth.http.get(
            "/rest/v1/profiles?select=username",
            headers={"apikey": auth.anon, "Authorization": f"Bearer {token}"},
        )
        return r.json()

    import time

    for _ in range(100):  # the schema cache reloads after the DDL above
        if isinstance(profiles(a["access_token"]), list):
            break
        time.sleep(0.05)
    assert profiles(a["access_token"]) == [{"username": "ann"}]
    assert profiles(b["access_token"]) == [{"username": "ben"}]
    assert auth.http.get("/rest/v1/profiles", headers={"apikey": auth.anon}).json() == []
    r = auth.admin("DELETE", f"/admin/users/{a['user']['id']}")
    assert r.status_code == 200
    assert auth.sql("select count(*) as n from public.profiles where username = 'ann'")[0]["n"] == 0
