"""Who is calling: `apikey` + `Authorization` → Claims, the one place that decides it.

It does what Supabase's gateway (Kong) and PostgREST's JWT check do together:

* an `apikey` (header, or `?apikey=` for browsers and websockets) is required where Kong
  requires it, and must be one of the project's keys;
* `Authorization: Bearer <jwt>` wins over the apikey; without it (or with `Bearer sb_…`) the
  apikey itself is the bearer token; new-format `sb_publishable_`/`sb_secret_` keys stand for
  the anon/service_role JWTs, as Kong maps them;
* the token must be a JWT signed with the project's secret (HS256) or, when Auth has signing
  keys, with one of them (ES256/RS256, chosen by `kid`); not expired (30 s skew, as
  PostgREST); `alg: none` and every other algorithm refused.  Its `role` claim (default: the
  anon role) is the database role the request runs as.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from time import time
from typing import Any

import jwt

from supalite.keys import ProjectKeys, public_jwk

_CLOCK_SKEW = 30  # seconds, as PostgREST
_CACHE_SIZE = 4096


@dataclass(frozen=True)
class Claims:
    role: str
    claims: Mapping[str, Any]
    token: str | None = None  # the verified bearer token, for passing on to other services
    from_user_token: bool = False  # True when Authorization carried a token of its own

    @cached_property
    def claims_json(self) -> str:
        return json.dumps(self.claims, separators=(",", ":"))

    @property
    def sub(self) -> str | None:
        v = self.claims.get("sub")
        return v if isinstance(v, str) else None


@dataclass
class GatewayError(Exception):
    """401s, with what each service needs to render them in its own shape."""

    kind: str  # "apikey" (Kong's answer) or "jwt" (PostgREST's)
    message: str
    code: str = ""  # PGRST3xx for jwt errors
    hint: str | None = None
    status: int = 401
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message

    def kong_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message}
        if self.hint:
            body["hint"] = self.hint
        return body

    def postgrest_body(self) -> dict[str, Any]:
        if self.kind == "apikey":
            return self.kong_body()
        return {"code": self.code, "details": None, "hint": self.hint, "message": self.message}


def _jwt_error(message: str, code: str = "PGRST301") -> GatewayError:
    desc = message.replace('"', "'")
    return GatewayError(
        "jwt",
        message,
        code=code,
        headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{desc}"'},
    )


NO_API_KEY = GatewayError(
    "apikey",
    "No API key found in request",
    hint="No `apikey` request header or url param was found.",
)
INVALID_API_KEY = GatewayError(
    "apikey",
    "Invalid API key",
    hint="Double check your Supabase `anon` or `service_role` API key.",
)


class Gateway:
    def __init__(self, keys: ProjectKeys, *, anon_role: str = "anon") -> None:
        self.keys = keys
        self.anon_role = anon_role
        # Opaque new-format keys → the legacy JWT they stand for.
        self._opaque = {keys.publishable_key: keys.anon_key, keys.secret_key: keys.service_role_key}
        self._known_keys = {keys.anon_key, keys.service_role_key, *self._opaque}
        self._cache: OrderedDict[str, Mapping[str, Any]] = OrderedDict()
        self._claims: dict[str, tuple[Mapping[str, Any], Claims]] = {}
        # kid → (alg, public key) of Auth's asymmetric signing keys.
        self._public: dict[str, tuple[str, Any]] = {}
        for jwk in keys.signing_jwks:
            parsed = jwt.PyJWK(public_jwk(jwk), algorithm=str(jwk["alg"]))
            self._public[str(jwk.get("kid", ""))] = (parsed.algorithm_name, parsed.key)

    # ------------------------------------------------------------------ tokens

    def verify(self, token: str) -> Mapping[str, Any]:
        """Decoded claims of a project JWT, or GatewayError with PostgREST's message."""
        cached = self._cache.get(token)
        now = time()
        if cached is not None:
            exp = cached.get("exp")
            if not isinstance(exp, (int, float)) or exp + _CLOCK_SKEW > now:
                self._cache.move_to_end(token)
                return cached
            del self._cache[token]
        parts = token.count(".") + 1
        if parts != 3:
            raise _jwt_error(f"Expected 3 parts in JWT; got {parts}")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise _jwt_error(f"JWSError {type(e).__name__}") from e
        alg = header.get("alg")
        key: Any = self.keys.jwt_secret
        if alg != "HS256":
            found = self._public.get(str(header.get("kid", "")))
            if found is None or found[0] != alg:
                raise _jwt_error("Wrong or unsupported encoding algorithm")
            key = found[1]
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[str(alg)],
                leeway=_CLOCK_SKEW,
                options={"verify_aud": False, "require": []},
            )
        except jwt.ExpiredSignatureError as e:
            raise _jwt_error("JWT expired", "PGRST303") from e
        except jwt.ImmatureSignatureError as e:
            raise _jwt_error("JWT not yet valid", "PGRST303") from e
        except jwt.InvalidIssuedAtError as e:
            raise _jwt_error("JWT issued at future", "PGRST303") from e
        except jwt.InvalidSignatureError as e:
            raise _jwt_error("JWSError JWSInvalidSignature") from e
        except jwt.PyJWTError as e:
            raise _jwt_error(f"JWSError {type(e).__name__}") from e
        if not isinstance(claims, dict):
            raise _jwt_error("JWT claims are not a JSON object", "PGRST303")
        role = claims.get("role")
        if role is not None and (not isinstance(role, str) or not role):
            raise _jwt_error("JWT 'role' claim must be a non-empty string", "PGRST303")
        self._cache[token] = claims
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return claims

    # ------------------------------------------------------------------ requests

    def check_apikey(
        self, headers: Mapping[str, str], query: Mapping[str, str] | None = None, *, require: bool
    ) -> str | None:
        """The request's apikey if it is one of the project's keys (Kong's key-auth)."""
        apikey = headers.get("apikey") or (query or {}).get("apikey") or None
        if apikey is not None and apikey not in self._known_keys:
            # Kong only knows the project's keys; a project-signed JWT is let through too, so
            # a key minted with another lifetime still works, but nothing else is.
            if apikey.startswith("sb_"):
                raise INVALID_API_KEY
            try:
                self.verify(apikey)
            except GatewayError:
                raise INVALID_API_KEY from None
        if apikey is None and require:
            raise NO_API_KEY
        return apikey

    @staticmethod
    def bearer(headers: Mapping[str, str]) -> str | None:
        """The `Authorization: Bearer` token, unless it is a new-format key (`sb_…`)."""
        auth = headers.get("authorization")
        if auth:
            scheme, _, value = auth.strip().partition(" ")
            value = value.strip()
            if scheme.lower() == "bearer" and value and not value.startswith("sb_"):
                return value
        return None

    def apikey_token(
        self, headers: Mapping[str, str], query: Mapping[str, str] | None = None
    ) -> str | None:
        """The JWT an apikey stands for (Kong's mapping of new-format keys), if any."""
        apikey = headers.get("apikey") or (query or {}).get("apikey") or None
        return self._opaque.get(apikey, apikey) if apikey else None

    def authenticate(
        self,
        headers: Mapping[str, str],
        query: Mapping[str, str] | None = None,
        *,
        require_apikey: bool = True,
    ) -> Claims:
        """Claims for a request from its headers (lower-case names) and query parameters."""
        apikey = self.check_apikey(headers, query, require=require_apikey)
        token = self.bearer(headers)
        from_user = token is not None
        if token is None and apikey is not None:
            token = self._opaque.get(apikey, apikey)
        if token is None:
            return Claims(self.anon_role, {"role": self.anon_role})
        verified = self.verify(token)
        from_user = from_user and token not in self._known_keys
        # The same token gets the same Claims (and its JSON, built once) while verify() keeps
        # answering with the same verification.
        built = self._claims.get(token)
        if built is not None and built[0] is verified and built[1].from_user_token == from_user:
            return built[1]
        role = verified.get("role") or self.anon_role
        claims = verified if "role" in verified else {**verified, "role": role}
        result = Claims(role, claims, token, from_user)
        if len(self._claims) >= _CACHE_SIZE:
            self._claims.clear()
        self._claims[token] = (verified, result)
        return result
