"""The gateway's key and token cases, as a unit and through HTTP on the running app."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import jwt
import pytest
from starlette.testclient import TestClient

from supalite.app import build_app
from supalite.config import load_settings
from supalite.db.embedded import EmbeddedPostgres
from supalite.gateway import Gateway, GatewayError
from supalite.keys import ProjectKeys, mint_role_key, project_keys
from supalite.runtime import build_runtime
from tests.conftest import TEST_SECRET


def token(claims: dict[str, object], secret: str = TEST_SECRET, alg: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=alg)


def user_token(**extra: object) -> str:
    now = int(time.time())
    claims = {
        "sub": "6c7f4a4e-2d1b-4a55-9d7e-3b1e1f0c9a01",
        "role": "authenticated",
        "aud": "authenticated",
        "iat": now,
        "exp": now + 3600,
        **extra,
    }
    return token(claims)


@pytest.fixture
def gw(keys: ProjectKeys) -> Gateway:
    return Gateway(keys)


def test_keys_are_deterministic_and_carry_roles(keys: ProjectKeys) -> None:
    again = project_keys(TEST_SECRET)
    assert again == keys  # same secret, same keys: processes agree without sharing files
    anon = jwt.decode(keys.anon_key, TEST_SECRET, algorithms=["HS256"])
    svc = jwt.decode(keys.service_role_key, TEST_SECRET, algorithms=["HS256"])
    assert (anon["role"], svc["role"]) == ("anon", "service_role")
    assert keys.publishable_key.startswith("sb_publishable_")
    assert keys.secret_key.startswith("sb_secret_")
    assert project_keys("another-secret-another-secret-xx").anon_key != keys.anon_key


def test_given_keys_must_match_the_secret() -> None:
    from supalite.keys import KeyConfigError

    good = mint_role_key(TEST_SECRET, "anon")
    assert project_keys(TEST_SECRET, anon_key=good).anon_key == good
    with pytest.raises(KeyConfigError, match="anon key is not a JWT signed"):
        foreign = mint_role_key("other-secret-other-secret-other-secret-xx", "anon")
        project_keys(TEST_SECRET, anon_key=foreign)
    with pytest.raises(KeyConfigError, match="carries role 'anon', expected 'service_role'"):
        project_keys(TEST_SECRET, service_role_key=good)


def test_no_apikey_is_401(gw: Gateway) -> None:
    with pytest.raises(GatewayError) as e:
        gw.authenticate({})
    assert e.value.status == 401 and e.value.message == "No API key found in request"
    # Where the gateway does not require a key, no credentials at all means anon.
    assert gw.authenticate({}, require_apikey=False).role == "anon"


def test_apikey_roles(gw: Gateway, keys: ProjectKeys) -> None:
    assert gw.authenticate({"apikey": keys.anon_key}).role == "anon"
    assert gw.authenticate({"apikey": keys.service_role_key}).role == "service_role"
    assert gw.authenticate({}, {"apikey": keys.anon_key}).role == "anon"  # ?apikey=
    assert gw.authenticate({"apikey": keys.publishable_key}).role == "anon"
    assert gw.authenticate({"apikey": keys.secret_key}).role == "service_role"


@pytest.mark.parametrize(
    "apikey",
    [
        "nonsense",
        "sb_publishable_forged",
        "a.b.c",
        mint_role_key("someone-elses-secret-someone-else", "service_role"),
    ],
)
def test_invalid_apikey_is_401(gw: Gateway, apikey: str) -> None:
    with pytest.raises(GatewayError) as e:
        gw.authenticate({"apikey": apikey})
    assert (e.value.status, e.value.message) == (401, "Invalid API key")


def test_user_token_wins_over_apikey(gw: Gateway, keys: ProjectKeys) -> None:
    t = user_token(email="a@example.com")
    c = gw.authenticate({"apikey": keys.anon_key, "authorization": f"Bearer {t}"})
    assert c.role == "authenticated"
    assert c.sub == "6c7f4a4e-2d1b-4a55-9d7e-3b1e1f0c9a01"
    assert c.claims["email"] == "a@example.com"
    assert c.from_user_token and c.token == t


def test_bearer_sb_key_falls_back_to_apikey(gw: Gateway, keys: ProjectKeys) -> None:
    c = gw.authenticate({"apikey": keys.secret_key, "authorization": f"Bearer {keys.secret_key}"})
    assert c.role == "service_role"
    assert c.token == keys.service_role_key


def test_token_without_role_is_anon(gw: Gateway, keys: ProjectKeys) -> None:
    c = gw.authenticate({"apikey": keys.anon_key, "authorization": f"Bearer {token({'sub': 'x'})}"})
    assert c.role == "anon" and c.claims["role"] == "anon"


BAD_TOKENS = {
    "expired": (token({"role": "authenticated", "exp": int(time.time()) - 120}), "JWT expired"),
    "wrong secret": (
        token({"role": "service_role"}, "wrong-secret-wrong-secret-wrong-secret"),
        "JWSError JWSInvalidSignature",
    ),
    "alg none": (
        jwt.encode({"role": "service_role"}, None, algorithm="none"),
        "Wrong or unsupported encoding algorithm",
    ),
    "two parts": ("abc.def", "Expected 3 parts in JWT; got 2"),
    "garbage": ("a.b.c", "JWSError DecodeError"),
    "role not a string": (token({"role": 5}), "JWT 'role' claim must be a non-empty string"),
    # A day ahead: the token is built when tests are collected, and the suite takes minutes.
    "not yet valid": (
        token({"role": "anon", "nbf": int(time.time()) + 86400}),
        "JWT not yet valid",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
def test_bad_bearer_tokens_are_401(gw: Gateway, keys: ProjectKeys, case: str) -> None:
    bad, message = BAD_TOKENS[case]
    with pytest.raises(GatewayError) as e:
        gw.authenticate({"apikey": keys.anon_key, "authorization": f"Bearer {bad}"})
    assert e.value.status == 401
    assert e.value.message == message
    assert e.value.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


def test_rs256_token_with_hs256_secret_is_refused(gw: Gateway, keys: ProjectKeys) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode({"role": "service_role"}, key, algorithm="RS256")
    with pytest.raises(GatewayError, match="Wrong or unsupported encoding algorithm"):
        gw.authenticate({"apikey": keys.anon_key, "authorization": f"Bearer {forged}"})


def test_cached_token_still_expires(gw: Gateway, keys: ProjectKeys) -> None:
    short = token({"role": "authenticated", "exp": int(time.time()) - 29})  # inside the skew
    headers = {"apikey": keys.anon_key, "authorization": f"Bearer {short}"}
    assert gw.authenticate(headers).role == "authenticated"
    time.sleep(1.2)  # now past exp + 30 s skew
    with pytest.raises(GatewayError, match="JWT expired"):
        gw.authenticate(headers)


def test_claims_are_built_once_per_token(gw: Gateway, keys: ProjectKeys) -> None:
    alice = {"apikey": keys.anon_key, "authorization": f"Bearer {user_token(email='a@x.io')}"}
    first = gw.authenticate(alice)
    assert gw.authenticate(alice) is first  # its claims' JSON too: rendered once
    # The same token as the apikey alone is not the user's own token.
    as_key = gw.authenticate({"apikey": keys.anon_key})
    assert as_key.role == "anon" and not as_key.from_user_token
    bearer_anon = gw.authenticate(
        {"apikey": keys.anon_key, "authorization": f"Bearer {keys.anon_key}"}
    )
    assert not bearer_anon.from_user_token
    other = {"apikey": keys.anon_key, "authorization": f"Bearer {user_token(email='b@x.io')}"}
    assert gw.authenticate(other).claims["email"] == "b@x.io"


# ---------------------------------------------------------------- through HTTP


@pytest.fixture(scope="module")
def client(
    embedded_pg: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    project: Path = tmp_path_factory.mktemp("gwproject")
    settings = load_settings(
        project, env={"SUPALITE_JWT_SECRET": TEST_SECRET, "SUPALITE_DB_PORT": str(embedded_pg.port)}
    )
    settings = replace(settings, data_dir=embedded_pg.data_dir)
    runtime = build_runtime(settings)
    with TestClient(build_app(runtime)) as c:
        yield c


def test_http_rest_root_needs_a_key(client: TestClient, keys: ProjectKeys) -> None:
    r = client.get("/rest/v1/")
    assert r.status_code == 401
    assert r.json() == {
        "message": "No API key found in request",
        "hint": "No `apikey` request header or url param was found.",
    }
    r = client.get("/rest/v1/", headers={"apikey": keys.anon_key})
    assert r.status_code == 200
    assert r.json()["swagger"] == "2.0"
    assert r.headers["content-type"].startswith("application/openapi+json")


def test_http_bad_token_is_postgrest_error(client: TestClient, keys: ProjectKeys) -> None:
    bad, message = BAD_TOKENS["expired"]
    r = client.get("/rest/v1/", headers={"apikey": keys.anon_key, "Authorization": f"Bearer {bad}"})
    assert r.status_code == 401
    assert r.json() == {"code": "PGRST303", "details": None, "hint": None, "message": message}
    assert r.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    r = client.get("/rest/v1/", headers={"apikey": "wrong"})
    assert (r.status_code, r.json()["message"]) == (401, "Invalid API key")


def test_http_health(client: TestClient) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    services = {"rest": "ok", "auth": "ok", "storage": "ok", "realtime": "ok", "db": "ok"}
    assert body["services"] == services
    assert "embedded PostgreSQL" in body["database"]
