"""Emailed secrets: each message carries a 6-digit code and a link with its hash, either of
which proves the address (GoTrue's scheme: the stored value is sha224(address + code), with a
`pkce_` prefix when the flow that asked for it is PKCE)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import asyncpg

from supalite.auth import sql
from supalite.auth.context import AuthContext
from supalite.auth.errors import internal, too_many, validation
from supalite.auth.mail import MailError
from supalite.auth.sessions import create_flow_state
from supalite.auth.tokens import otp, token_hash

log = logging.getLogger("supalite.auth")

# checkmail's format check, which GoTrue applies: ASCII only, so look-alike Unicode addresses
# never become accounts.
_EMAIL = re.compile(
    r"^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$"
)


def validate_email(email: Any) -> str:
    if not isinstance(email, str) or not email:
        raise validation("An email address is required")
    if len(email) > 255:
        raise validation("An email address is too long")
    if not _EMAIL.match(email):
        raise validation("Unable to validate email address: invalid format")
    return email.lower()


def check_frequency(ctx: AuthContext, sent_at: datetime | None) -> None:
    """At most one email of a kind per address per `max_frequency` (GoTrue's 429)."""
    if sent_at is None:
        return
    wait = ctx.auth.email_max_frequency - (datetime.now(UTC) - sent_at).total_seconds()
    if wait > 0:
        raise too_many(
            "over_email_send_rate_limit",
            f"For security purposes, you can only request this after {max(1, round(wait))} "
            "seconds.",
        )


def _link(ctx: AuthContext, stored: str, verify_type: str, redirect_to: str) -> str:
    query = urlencode({"token": stored, "type": verify_type, "redirect_to": redirect_to})
    return f"{ctx.external_url}/verify?{query}"


async def deliver(
    ctx: AuthContext, template: str, to: str, variables: Mapping[str, str], what: str
) -> None:
    if ctx.smtp_configured:
        ctx.limiter.hit("email_sent", "project")  # Supabase limits only real SMTP sending
    try:
        await ctx.mailer.send(template, to, variables)
    except MailError as e:  # SMTP, TLS or inbox failure: GoTrue's 500
        log.error("sending %s email failed: %s", what, e)
        raise internal(f"Error sending {what} email") from e


@dataclass(frozen=True)
class Purpose:
    """One reason to email a code: where it is stored, which template, what the link says."""

    kind: str  # the users column family: confirmation | recovery | reauthentication
    template: str
    verify_type: str  # `type=` in the link, and what /verify does with it
    auth_method: str  # flow_state.authentication_method when the client is on PKCE
    what: str  # for the "Error sending … email" message


PURPOSES = {
    "signup": Purpose("confirmation", "confirmation", "signup", "email/signup", "confirmation"),
    "invite": Purpose("confirmation", "invite", "invite", "invite", "invite"),
    "magiclink": Purpose("recovery", "magic_link", "magiclink", "magiclink", "magic link"),
    "recovery": Purpose("recovery", "recovery", "recovery", "recovery", "recovery"),
    "reauthentication": Purpose(
        "reauthentication", "reauthentication", "reauthentication", "", "reauthentication"
    ),
}


async def send_token_mail(
    ctx: AuthContext,
    conn: asyncpg.Connection,
    user: Mapping[str, Any],
    purpose: str,
    *,
    redirect_to: str,
    pkce: tuple[str, str] | None = None,
) -> None:
    """Store a fresh code's hash for `user` and email the code and its link; with `pkce`
    (challenge, method) the flow state the link's auth code will belong to is recorded too."""
    p = PURPOSES[purpose]
    check_frequency(ctx, user[f"{p.kind}_sent_at"])
    if pkce is not None:
        await create_flow_state(conn, user["id"], pkce[0], pkce[1], p.auth_method)
    email = user["email"]
    code = otp(ctx.auth.email_otp_length)
    stored = ("pkce_" if pkce else "") + token_hash(email, code)
    await conn.execute(sql.SET_TOKEN[p.kind], user["id"], stored)
    await conn.execute(sql.UPSERT_ONE_TIME_TOKEN, user["id"], f"{p.kind}_token", stored, email)
    variables = {
        "ConfirmationURL": _link(ctx, stored, p.verify_type, redirect_to),
        "Token": code,
        "TokenHash": stored,
        "SiteURL": ctx.auth.site_url,
        "Email": email,
        "RedirectTo": redirect_to,
    }
    await deliver(ctx, p.template, email, variables, p.what)


async def send_email_change(
    ctx: AuthContext,
    conn: asyncpg.Connection,
    user: Mapping[str, Any],
    new_email: str,
    *,
    redirect_to: str,
    pkce: bool,
) -> None:
    """Codes to the new address and, with double confirmation on, to the current one too."""
    check_frequency(ctx, user["email_change_sent_at"])
    prefix = "pkce_" if pkce else ""
    code_new = otp(ctx.auth.email_otp_length)
    token_new = prefix + token_hash(new_email, code_new)
    current = user["email"] or ""
    code_current = token_current = ""
    if ctx.auth.email_double_confirm_changes and current:
        code_current = otp(ctx.auth.email_otp_length)
        token_current = prefix + token_hash(current, code_current)
    await conn.execute(sql.SET_EMAIL_CHANGE, user["id"], new_email, token_new, token_current)
    await conn.execute(
        sql.UPSERT_ONE_TIME_TOKEN, user["id"], "email_change_token_new", token_new, new_email
    )
    base = {
        "SiteURL": ctx.auth.site_url,
        "Email": current,
        "NewEmail": new_email,
        "RedirectTo": redirect_to,
    }
    if token_current:
        await conn.execute(
            sql.UPSERT_ONE_TIME_TOKEN,
            user["id"],
            "email_change_token_current",
            token_current,
            current,
        )
        await deliver(
            ctx,
            "email_change",
            current,
            {
                **base,
                "Token": code_current,
                "TokenHash": token_current,
                "ConfirmationURL": _link(ctx, token_current, "email_change", redirect_to),
            },
            "email change",
        )
    await deliver(
        ctx,
        "email_change",
        new_email,
        {
            **base,
            "Token": code_new,
            "TokenHash": token_new,
            "ConfirmationURL": _link(ctx, token_new, "email_change", redirect_to),
        },
        "email change",
    )
