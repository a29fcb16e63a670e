"""What every Auth operation needs: settings, the database, the signer, limits, the mailer,
and who is calling."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg

from supalite.auth import sql
from supalite.auth.passwords import check_strength, hash_password
from supalite.auth.ratelimit import RateLimiter
from supalite.auth.tokens import TokenSigner
from supalite.config import AuthSettings, Settings


class MailSender(Protocol):
    async def send(self, kind: str, to: str, variables: Mapping[str, str]) -> None: ...


@dataclass(frozen=True)
class Caller:
    """The HTTP facts Auth records and limits by."""

    ip: str = ""
    user_agent: str = ""
    # Claims of a verified bearer token, when the endpoint needed one.
    claims: Mapping[str, Any] | None = None


@dataclass
class AuthContext:
    settings: Settings
    pool: asyncpg.Pool  # the database owner: auth.* is not reachable by the API roles
    signer: TokenSigner
    limiter: RateLimiter
    mailer: MailSender

    @property
    def auth(self) -> AuthSettings:
        return self.settings.auth

    @property
    def external_url(self) -> str:
        """Auth's public base URL, as GoTrue's API_EXTERNAL_URL: links in emails point here."""
        return self.settings.api_url + "/auth/v1"

    @property
    def issuer(self) -> str:
        return self.auth.jwt_issuer or self.external_url

    @property
    def autoconfirm(self) -> bool:
        return not self.auth.email_enable_confirmations

    @property
    def smtp_configured(self) -> bool:
        return self.auth.smtp_enabled and bool(self.auth.smtp_host)

    def check_password(self, password: str) -> None:
        """The project's password rules (GoTrue's 422 weak_password when broken)."""
        check_strength(password, self.auth.minimum_password_length, self.auth.password_requirements)

    async def hash_new_password(self, password: str) -> str:
        """A password someone is setting: checked against the rules, then hashed."""
        self.check_password(password)
        return await hash_password(password)


async def audit(
    conn: asyncpg.Connection,
    caller: Caller,
    action: str,
    *,
    actor: Mapping[str, Any] | None = None,
    traits: Mapping[str, Any] | None = None,
    log_type: str = "user",
) -> None:
    """One row in auth.audit_log_entries, GoTrue's payload shape."""
    payload: dict[str, Any] = {"action": action, "log_type": log_type}
    if actor is not None:
        payload["actor_id"] = str(actor["id"])
        payload["actor_username"] = actor.get("email") or actor.get("phone") or ""
        payload["actor_via_sso"] = False
    if traits:
        payload["traits"] = dict(traits)
    await conn.execute(sql.AUDIT, json.dumps(payload), caller.ip[:64])


def new_id() -> uuid.UUID:
    return uuid.uuid4()
