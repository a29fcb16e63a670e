"""Auth's email: render Supabase's templates, deliver by SMTP or to the built-in mail catcher.

Templates use Supabase's Go-template variable names (`{{ .ConfirmationURL }}`, `{{ .Token }}`,
`{{ .Data.name }}`, …) so a project's `supabase/templates/*.html` work unchanged; only variable
substitution is implemented, not Go's template language (`{{ if }}` is left as written).

Delivery: with `[auth.email.smtp] enabled = true` and a host, by SMTP; otherwise into
`_supalite.mail_inbox`, read with `supalite mail` or `GET /inbox/v1/messages` (the role
Supabase's Inbucket plays locally).  The inbox lives in Postgres so a fleet shares it.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import re
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from functools import cache
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Any

import asyncpg

from supalite.config import EMAIL_TEMPLATE_KINDS, AuthSettings

log = logging.getLogger("supalite.mail")

# Supabase's template names and their default subjects (the Supabase CLI's defaults).
DEFAULT_SUBJECTS: Mapping[str, str] = {
    "confirmation": "Confirm Your Signup",
    "invite": "You have been invited",
    "magic_link": "Your Magic Link",
    "recovery": "Reset Your Password",
    "email_change": "Confirm Email Change",
    "reauthentication": "Confirm reauthentication",
}
KINDS = EMAIL_TEMPLATE_KINDS

INBOX_KEEP = 1000  # the catcher keeps the newest this many messages
SMTP_TIMEOUT = 10.0  # seconds, per SMTP operation

# A value is a string, or (for `.Data`) a mapping walked by the dotted name.
TemplateValues = Mapping[str, Any]


class MailError(Exception):
    """Delivery failed; the message says why (Auth answers 500 "Error sending … email")."""


@dataclass(frozen=True)
class MailMessage:
    to: str
    subject: str
    html: str
    text: str
    kind: str


# ------------------------------------------------------------------ rendering

# `{{ .Name }}`, `{{.Data.key}}`, `{{- .Token -}}`: Go's trim markers are accepted and ignored.
_VAR = re.compile(r"\{\{-?\s*\.([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*-?\}\}")


def _lookup(values: TemplateValues, dotted: str) -> str:
    """The value as Go's template prints it; a missing one is empty, as html/template does."""
    value: Any = values
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return ""
        value = value[part]
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def substitute(template: str, values: TemplateValues, *, escape: bool) -> str:
    """Replace each `{{ .Name }}`; `escape` HTML-escapes values (bodies, not subjects)."""

    def repl(m: re.Match[str]) -> str:
        value = _lookup(values, m.group(1))
        return html.escape(value, quote=True) if escape else value

    return _VAR.sub(repl, template)


class _TextRenderer(HTMLParser):
    """HTML → plain text: block elements become lines, links become `label <url>`."""

    _BLOCKS = frozenset(
        {"p", "div", "br", "h1", "h2", "h3", "h4", "h5", "h6", "li", "tr", "table", "hr"}
    )
    _HIDDEN = frozenset({"head", "style", "script", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._href: str | None = None
        self._label: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")
        elif tag == "a":
            self._href = dict(attrs).get("href") or None
            self._label = []

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")
        elif tag == "a" and self._href is not None:
            label = "".join(self._label).strip()
            if label and label != self._href:
                self.parts.append(f" <{self._href}>")
            elif not label:
                self.parts.append(self._href)
            self._href = None

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        self.parts.append(data)
        if self._href is not None:
            self._label.append(data)

    def text(self) -> str:
        lines = (" ".join(line.split()) for line in "".join(self.parts).splitlines())
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def html_to_text(body: str) -> str:
    renderer = _TextRenderer()
    renderer.feed(body)
    renderer.close()
    return renderer.text()


@cache
def default_body(kind: str) -> str:
    return (
        resources.files("supalite.auth")
        .joinpath(f"templates/{kind}.html")
        .read_text(encoding="utf-8")
    )


# ------------------------------------------------------------------ the mail catcher's table

_INSERT = """
insert into _supalite.mail_inbox (recipient, subject, html, text, kind)
values ($1, $2, $3, $4, $5)
returning id
"""
# Everything older than the keep-th newest message; by id, which the index serves.
_TRIM = """
delete from _supalite.mail_inbox
where id < (select id from _supalite.mail_inbox order by id desc offset $1 limit 1)
"""
_COLUMNS = "id, created_at, recipient, subject, kind, text, html"
_LIST = f"""
select {_COLUMNS} from _supalite.mail_inbox
where $1::text is null or lower(recipient) = lower($1)
order by id desc
limit $2
"""
_GET = f"select {_COLUMNS} from _supalite.mail_inbox where id = $1"
_CLEAR = """
with gone as (
  delete from _supalite.mail_inbox
  where $1::text is null or lower(recipient) = lower($1)
  returning 1
)
select count(*) from gone
"""


@dataclass(frozen=True)
class StoredMessage:
    id: int
    created_at: datetime
    to: str
    subject: str
    kind: str
    text: str
    html: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StoredMessage:
        return cls(row["id"], row["created_at"], row["recipient"], row["subject"],
                   row["kind"], row["text"], row["html"])  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "to": self.to,
            "subject": self.subject,
            "created_at": self.created_at.isoformat(),
            "kind": self.kind,
            "text": self.text,
            "html": self.html,
        }


# `db` below is an asyncpg Pool or Connection: both have fetch/fetchrow/fetchval.


async def list_messages(db: Any, *, to: str | None = None, limit: int = 50) -> list[StoredMessage]:
    """Newest first, optionally only those sent to `to` (case-insensitive)."""
    rows = await db.fetch(_LIST, to, limit)
    return [StoredMessage.from_row(r) for r in rows]


async def get_message(db: Any, message_id: int) -> StoredMessage | None:
    row = await db.fetchrow(_GET, message_id)
    return StoredMessage.from_row(row) if row is not None else None


async def clear_messages(db: Any, *, to: str | None = None) -> int:
    """Delete the inbox (or one recipient's messages); return how many went."""
    n: int = await db.fetchval(_CLEAR, to)
    return n


# ------------------------------------------------------------------ the mailer


class Mailer:
    """What Auth calls to send its emails; one per app, made in app.py's lifespan."""

    def __init__(
        self,
        settings: AuthSettings,
        admin_pool: asyncpg.Pool,
        *,
        project_dir: Path,
        smtp_timeout: float = SMTP_TIMEOUT,
        tls_context: ssl.SSLContext | None = None,  # for SMTP servers with a private CA
        inbox_keep: int = INBOX_KEEP,
    ) -> None:
        self.settings = settings
        self.pool = admin_pool
        self.project_dir = project_dir
        self.smtp_timeout = smtp_timeout
        self.tls_context = tls_context
        self.inbox_keep = inbox_keep

    @property
    def uses_smtp(self) -> bool:
        return self.settings.smtp_enabled and bool(self.settings.smtp_host)

    async def send(self, kind: str, to: str, variables: TemplateValues) -> None:
        """Render template `kind` for `to` and deliver it; MailError if delivery fails."""
        message = self.render(kind, to, variables)
        if self.uses_smtp:
            await asyncio.to_thread(self._send_smtp, message)
        else:
            await self._store(message)

    def render(self, kind: str, to: str, variables: TemplateValues) -> MailMessage:
        """The message as it would be sent (ValueError for an unknown kind)."""
        if kind not in DEFAULT_SUBJECTS:
            raise ValueError(f"unknown email template '{kind}' (known: {', '.join(KINDS)})")
        if not to or "@" not in to or any(c in to for c in "\r\n"):
            raise MailError(f"invalid recipient address {to!r}")
        subject_tpl, body_tpl = self._template(kind)
        # A subject is a header, not HTML: values go in raw, minus anything that ends a line.
        subject = " ".join(substitute(subject_tpl, variables, escape=False).split())
        body = substitute(body_tpl, variables, escape=True)
        return MailMessage(to, subject, body, html_to_text(body), kind)

    def _template(self, kind: str) -> tuple[str, str]:
        override = self.settings.email_templates.get(kind, {})
        subject = override.get("subject") or DEFAULT_SUBJECTS[kind]
        content_path = override.get("content_path")
        if not content_path:
            return subject, default_body(kind)
        # Read on every send, so an edited template applies without a restart.
        path = self.project_dir / content_path
        try:
            return subject, path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            key = f"auth.email.template.{kind}.content_path"
            raise MailError(f"cannot read the template in {key} ({path}): {e}") from e

    # -------------------------------------------------------------- delivery

    async def _store(self, message: MailMessage) -> None:
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.fetchval(_INSERT, message.to, message.subject, message.html,
                                    message.text, message.kind)  # fmt: skip
                await conn.execute(_TRIM, self.inbox_keep - 1)
        except (asyncpg.PostgresError, OSError) as e:
            raise MailError(f"cannot store the message in the mail inbox: {e}") from e
        log.info("%s email to %s kept in the mail inbox (supalite mail)", message.kind, message.to)

    def _email(self, message: MailMessage) -> EmailMessage:
        s = self.settings
        em = EmailMessage()
        em["From"] = formataddr((s.smtp_sender_name, s.smtp_admin_email))
        em["To"] = message.to
        em["Subject"] = message.subject
        em["Date"] = formatdate(usegmt=True)
        domain = s.smtp_admin_email.rpartition("@")[2] or None
        em["Message-ID"] = make_msgid(domain=domain)
        em.set_content(message.text)
        em.add_alternative(message.html, subtype="html")
        return em

    def _send_smtp(self, message: MailMessage) -> None:
        """Blocking; run in a thread.  Implicit TLS on 465, else STARTTLS when offered."""
        s = self.settings
        where = f"{s.smtp_host}:{s.smtp_port}"
        context = self.tls_context or ssl.create_default_context()
        try:
            email = self._email(message)
            smtp: smtplib.SMTP
            if s.smtp_port == 465:
                smtp = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=self.smtp_timeout,
                                        context=context)  # fmt: skip
            else:
                smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=self.smtp_timeout)
            with smtp:
                smtp.ehlo()
                if s.smtp_port != 465 and smtp.has_extn("starttls"):
                    smtp.starttls(context=context)
                    smtp.ehlo()
                if s.smtp_user:
                    smtp.login(s.smtp_user, s.smtp_pass)
                smtp.send_message(email, from_addr=s.smtp_admin_email, to_addrs=[message.to])
        except (smtplib.SMTPException, OSError, ValueError) as e:
            # OSError covers refused connections, timeouts and TLS failures; ValueError a
            # header the email package refuses.
            raise MailError(f"SMTP delivery to {where} failed: {e}") from e
        log.info("%s email to %s sent via %s", message.kind, message.to, where)
