"""Access tokens (JWTs with Supabase's claims), the JWKS, and the random one-time secrets.

Access tokens are HS256 with the project secret unless signing keys are configured
(`auth.signing_keys_path`, a JSON list of private JWKs as the Supabase CLI writes it); then
the first key signs (ES256 or RS256, with its `kid`) and every key's public half is published
at `/.well-known/jwks.json`, which the gateway also trusts.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from supalite.auth.users import jsonb
from supalite.keys import ProjectKeys, public_jwk


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    key: Any  # the private key object PyJWT signs with
    public_jwk: Mapping[str, Any]


def signing_keys(jwks: Sequence[Mapping[str, Any]]) -> list[SigningKey]:
    out = []
    for jwk in jwks:
        alg = str(jwk.get("alg") or "")
        parsed = jwt.PyJWK(dict(jwk), algorithm=alg or None)
        out.append(
            SigningKey(str(jwk.get("kid", "")), parsed.algorithm_name, parsed.key, public_jwk(jwk))
        )
    return out


class TokenSigner:
    def __init__(self, keys: ProjectKeys) -> None:
        self._secret = keys.jwt_secret
        self._keys = signing_keys(keys.signing_jwks)

    @property
    def algorithm(self) -> str:
        return self._keys[0].alg if self._keys else "HS256"

    def sign(self, claims: Mapping[str, Any]) -> str:
        if self._keys:
            k = self._keys[0]
            return jwt.encode(dict(claims), k.key, algorithm=k.alg, headers={"kid": k.kid})
        return jwt.encode(dict(claims), self._secret, algorithm="HS256")

    def jwks(self) -> dict[str, Any]:
        return {"keys": [dict(k.public_jwk) for k in self._keys]}


def access_claims(
    user: Mapping[str, Any],
    *,
    session_id: str,
    aal: str,
    amr: Sequence[Mapping[str, Any]],
    issuer: str,
    expiry: int,
    now: int | None = None,
) -> dict[str, Any]:
    """Supabase's access-token claims, in GoTrue's order."""
    iat = int(time.time()) if now is None else now
    return {
        "iss": issuer,
        "sub": str(user["id"]),
        "aud": user["aud"] or "authenticated",
        "exp": iat + expiry,
        "iat": iat,
        "email": user["email"] or "",
        "phone": user["phone"] or "",
        "app_metadata": jsonb(user["raw_app_meta_data"]),
        "user_metadata": jsonb(user["raw_user_meta_data"]),
        "role": user["role"] or "authenticated",
        "aal": aal,
        "amr": list(amr),
        "session_id": session_id,
        "is_anonymous": bool(user["is_anonymous"]),
    }


# ------------------------------------------------------------------ one-time secrets


def refresh_token() -> str:
    """An opaque refresh token: 130 random bits in lower-case base32, as GoTrue's look."""
    return base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=").lower()


def otp(digits: int) -> str:
    return f"{secrets.randbelow(10**digits):0{digits}d}"


def token_hash(email_or_phone: str, code: str) -> str:
    """GoTrue's hash of an emailed code: what is stored, and what links carry."""
    return hashlib.sha224((email_or_phone + code).encode()).hexdigest()


def code_challenge_matches(method: str, challenge: str, verifier: str) -> bool:
    if method == "plain":
        return secrets.compare_digest(challenge, verifier)
    digest = hashlib.sha256(verifier.encode()).digest()
    computed = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    return secrets.compare_digest(challenge, computed)
