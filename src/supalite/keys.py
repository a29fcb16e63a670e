"""The project's JWT secret and the API keys minted from it.

The secret is generated on first start and kept in the data folder (mode 0600) unless it is
given (SUPALITE_JWT_SECRET / JWT_SECRET).  The keys are derived deterministically from it: the
same secret always gives the same anon and service_role keys, so several processes sharing a
secret agree on the keys without sharing any other file, and a restart never changes them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

_KEY_IAT = 1735689600  # 2025-01-01T00:00:00Z: fixed, so minting is deterministic
_KEY_LIFETIME = 20 * 365 * 24 * 3600


class KeyConfigError(Exception):
    """A configured key that does not fit the secret."""


@dataclass(frozen=True)
class ProjectKeys:
    jwt_secret: str
    anon_key: str
    service_role_key: str
    publishable_key: str  # new-format keys, mapped to the JWTs above by the gateway
    secret_key: str
    # Asymmetric signing keys (private JWKs) for Auth's access tokens; the first one signs.
    signing_jwks: tuple[Mapping[str, Any], ...] = ()


_PUBLIC_FIELDS = {
    "RSA": ("kty", "n", "e"),
    "EC": ("kty", "crv", "x", "y"),
    "OKP": ("kty", "crv", "x"),
}


def public_jwk(jwk: Mapping[str, Any]) -> dict[str, Any]:
    """The publishable half of a JWK: no private parameters, ever."""
    kty = jwk.get("kty")
    fields = _PUBLIC_FIELDS.get(str(kty))
    if fields is None:
        raise ValueError(f"unsupported key type {kty!r}")
    out = {k: jwk[k] for k in fields}
    out.update({"kid": jwk.get("kid", ""), "alg": jwk.get("alg"), "use": "sig"})
    out["key_ops"] = ["verify"]
    return out


def load_signing_jwks(path: Path) -> tuple[Mapping[str, Any], ...]:
    """`auth.signing_keys_path`: a JSON list of private JWKs (ES256 or RS256), as the
    Supabase CLI's `gen signing-key` writes it."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise KeyConfigError(f"{path}: cannot read signing keys: {e.strerror or e}") from e
    except ValueError as e:
        raise KeyConfigError(f"{path}: signing keys are not valid JSON ({e})") from e
    if isinstance(doc, dict) and isinstance(doc.get("keys"), list):
        doc = doc["keys"]
    if not isinstance(doc, list) or not doc or not all(isinstance(k, dict) for k in doc):
        raise KeyConfigError(f"{path}: expected a non-empty JSON list of JWKs")
    for k in doc:
        if k.get("alg") not in ("ES256", "RS256") or "d" not in k:
            raise KeyConfigError(
                f"{path}: each key must be a private JWK with alg ES256 or RS256 "
                f"(kid {k.get('kid')!r} is not)"
            )
    return tuple(doc)


def load_or_create_secret(data_dir: Path) -> str:
    path = data_dir / "jwt_secret"
    try:
        secret = path.read_text().strip()
    except FileNotFoundError:
        secret = ""
    if secret:
        return secret
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    # Write-then-rename so a crash never leaves a half-written secret behind.
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return secret


def mint_role_key(secret: str, role: str, project_ref: str = "supalite") -> str:
    claims = {
        "iss": "supabase",
        "ref": project_ref,
        "role": role,
        "iat": _KEY_IAT,
        "exp": _KEY_IAT + _KEY_LIFETIME,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def derive(jwt_secret: str, label: str) -> bytes:
    """32 bytes for one purpose (`label`), derived from the JWT secret with HMAC-SHA256.

    Every process that can verify tokens already shares the JWT secret, so what is derived
    from it (database passwords, encryption keys, opaque API keys) needs no other secret
    distributed to a fleet, while the database alone reveals none of it."""
    return hmac.new(jwt_secret.encode(), label.encode(), hashlib.sha256).digest()


def _opaque_key(secret: str, prefix: str) -> str:
    digest = derive(secret, prefix)
    return prefix + base64.urlsafe_b64encode(digest[:24]).decode().rstrip("=")


def _check_given(secret: str, key: str, role: str, name: str) -> None:
    try:
        claims = jwt.decode(key, secret, algorithms=["HS256"], options={"verify_aud": False})
    except jwt.PyJWTError as e:
        raise KeyConfigError(
            f"{name} is not a JWT signed with this project's JWT secret ({e})"
        ) from e
    if claims.get("role") != role:
        raise KeyConfigError(f"{name} carries role '{claims.get('role')}', expected '{role}'")


def project_keys(
    secret: str,
    *,
    anon_key: str | None = None,
    service_role_key: str | None = None,
    project_ref: str = "supalite",
    signing_jwks: tuple[Mapping[str, Any], ...] = (),
) -> ProjectKeys:
    if anon_key:
        _check_given(secret, anon_key, "anon", "the anon key")
    if service_role_key:
        _check_given(secret, service_role_key, "service_role", "the service_role key")
    return ProjectKeys(
        jwt_secret=secret,
        anon_key=anon_key or mint_role_key(secret, "anon", project_ref),
        service_role_key=service_role_key or mint_role_key(secret, "service_role", project_ref),
        publishable_key=_opaque_key(secret, "sb_publishable_"),
        secret_key=_opaque_key(secret, "sb_secret_"),
        signing_jwks=signing_jwks,
    )
