"""Auth's mailer: templates, SMTP delivery to a real SMTP server (aiosmtpd), the built-in mail
catcher in Postgres, its HTTP inbox and `supalite mail`."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncpg
import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword
from starlette.applications import Starlette
from starlette.routing import Mount

from supalite.auth import inbox_routes
from supalite.auth.mail import DEFAULT_SUBJECTS, KINDS, Mailer, MailError, list_messages
from supalite.config import AuthSettings, ConfigError, load_settings
from supalite.gateway import Gateway
from tests.helpers import LiveServer, free_port, supalite

LINK = "http://127.0.0.1:54321/auth/v1/verify?token=abc&type=magiclink&redirect_to=http://app"
VARS = {"ConfirmationURL": LINK, "Token": "123456", "SiteURL": "http://app", "Email": "a@x.io"}


# ------------------------------------------------------------------ a real SMTP server


@dataclass
class Catch:
    """What the SMTP server received."""

    messages: list[tuple[Envelope, EmailMessage]] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((envelope, parsed))  # type: ignore[arg-type]
        return "250 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                     data: Any) -> AuthResult:  # fmt: skip
        assert isinstance(data, LoginPassword)
        login, password = data.login.decode(), data.password.decode()
        self.logins.append((login, password))
        return AuthResult(success=(login, password) == ("mailer", "s3cret"))


@pytest.fixture
def smtp() -> Iterator[tuple[Catch, int]]:
    catch = Catch()
    port = free_port()
    controller = Controller(catch, hostname="127.0.0.1", port=port,
                            authenticator=catch.authenticate, auth_require_tls=False)  # fmt: skip
    controller.start()
    try:
        yield catch, port
    finally:
        controller.stop()


def smtp_settings(port: int, **kw: Any) -> AuthSettings:
    base: dict[str, Any] = {
        "smtp_enabled": True, "smtp_host": "127.0.0.1", "smtp_port": port,
        "smtp_user": "mailer", "smtp_pass": "s3cret",
        "smtp_admin_email": "noreply@example.com", "smtp_sender_name": "My App",
    }  # fmt: skip
    return AuthSettings(**{**base, **kw})


@pytest.fixture
async def pool(embedded_pg: Any) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(embedded_pg.local_url(), min_size=1, max_size=4)
    await p.execute("delete from _supalite.mail_inbox")
    try:
        yield p
    finally:
        await p.close()


def parts(msg: EmailMessage) -> tuple[str, str]:
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()  # type: ignore[attr-defined]


# ------------------------------------------------------------------ rendering


def test_default_templates_exist_for_every_kind_with_supabase_subjects(tmp_path: Path) -> None:
    mailer = Mailer(AuthSettings(), None, project_dir=tmp_path)
    assert set(KINDS) == set(DEFAULT_SUBJECTS)
    for kind in KINDS:
        m = mailer.render(kind, "a@x.io", {**VARS, "NewEmail": "b@x.io"})
        assert m.subject == DEFAULT_SUBJECTS[kind] and m.kind == kind and m.to == "a@x.io"
        assert "{{" not in m.html and "{{" not in m.text
        if kind != "reauthentication":
            assert 'href="' + LINK.replace("&", "&amp;") + '"' in m.html
            assert LINK in m.text  # the text part carries the raw link
        if kind != "invite":  # OTP flows work from the default templates
            assert "123456" in m.html and "123456" in m.text
    assert mailer.render("confirmation", "a@x.io", VARS).subject == "Confirm Your Signup"
    assert "b@x.io" in mailer.render("email_change", "a@x.io", {"NewEmail": "b@x.io"}).text
    with pytest.raises(ValueError, match="unknown email template"):
        mailer.render("welcome", "a@x.io", VARS)
    for bad in ("", "no-at-sign", "a@x.io\r\nBcc: evil@x.io"):
        with pytest.raises(MailError, match="invalid recipient"):
            mailer.render("invite", bad, VARS)


def test_substitution_escapes_values_and_tolerates_whitespace(tmp_path: Path) -> None:
    (tmp_path / "t.html").write_text(
        "<p>Hi {{.Data.name}} / {{  .Email  }} / {{- .Token -}} / [{{ .Missing }}]"
        " / {{ .Data.age }} {{ .Data.admin }} / {{ if .Token }}kept{{ end }}</p>"
        '<style>p{color:red}</style><p><a href="{{ .ConfirmationURL }}">Go</a></p>'
    )
    settings = AuthSettings(email_templates={
        "magic_link": {"subject": "Hi {{ .Data.name }}\r\nBcc: x@y", "content_path": "t.html"}
    })  # fmt: skip
    values = {**VARS, "Email": '<b>"me"&you</b>', "Data": {"name": "Ann <3", "age": 7,
                                                            "admin": True}}  # fmt: skip
    m = Mailer(settings, None, project_dir=tmp_path).render("magic_link", "a@x.io", values)
    assert "Hi Ann &lt;3 / &lt;b&gt;&quot;me&quot;&amp;you&lt;/b&gt; / 123456 / []" in m.html
    assert "7 true / {{ if .Token }}kept{{ end }}" in m.html  # no Go template engine
    assert '<b>"me"&you</b>' in m.text and "Ann <3" in m.text and "color" not in m.text
    assert f"Go <{LINK}>" in m.text
    assert m.subject == "Hi Ann <3 Bcc: x@y"  # raw in the header, but on one line


# ------------------------------------------------------------------ SMTP


async def test_smtp_delivers_multipart_message_with_login(
    smtp: tuple[Catch, int], tmp_path: Path
) -> None:
    catch, port = smtp
    mailer = Mailer(smtp_settings(port), None, project_dir=tmp_path)
    await mailer.send("magic_link", "User@Example.com", {**VARS, "Email": "<i>x</i>"})
    assert catch.logins == [("mailer", "s3cret")]
    [(envelope, msg)] = catch.messages
    assert envelope.mail_from == "noreply@example.com"
    assert envelope.rcpt_tos == ["User@Example.com"]
    assert msg["Subject"] == "Your Magic Link"
    assert msg["To"] == "User@Example.com"
    [sender] = msg["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("My App", "noreply@example.com")
    assert msg["Message-ID"].endswith("@example.com>") and msg["Date"]
    assert msg.get_content_type() == "multipart/alternative"
    text, html = parts(msg)
    assert 'href="' + LINK.replace("&", "&amp;") + '"' in html and "123456" in html
    assert LINK in text and "123456" in text


async def test_smtp_without_user_skips_login(smtp: tuple[Catch, int], tmp_path: Path) -> None:
    catch, port = smtp
    mailer = Mailer(smtp_settings(port, smtp_user="", smtp_pass=""), None, project_dir=tmp_path)
    await mailer.send("reauthentication", "a@x.io", {"Token": "654321"})
    assert catch.logins == []
    [(_, msg)] = catch.messages
    assert msg["Subject"] == "Confirm reauthentication" and "654321" in parts(msg)[0]


async def test_smtp_failures_raise_mail_error(smtp: tuple[Catch, int], tmp_path: Path) -> None:
    catch, port = smtp
    wrong_password = Mailer(smtp_settings(port, smtp_pass="nope"), None, project_dir=tmp_path)
    with pytest.raises(MailError, match=f"SMTP delivery to 127.0.0.1:{port} failed"):
        await wrong_password.send("recovery", "a@x.io", VARS)
    nobody_listening = Mailer(smtp_settings(free_port()), None, project_dir=tmp_path,
                              smtp_timeout=5)  # fmt: skip
    with pytest.raises(MailError, match="SMTP delivery"):
        await nobody_listening.send("recovery", "a@x.io", VARS)
    assert catch.messages == []


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_path, key_path


async def test_smtp_upgrades_with_starttls_before_login(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    catch, port = Catch(), free_port()
    # This server refuses mail and logins until STARTTLS: delivery proves the upgrade happened.
    controller = Controller(catch, hostname="127.0.0.1", port=port, tls_context=server_tls,
                            require_starttls=True, authenticator=catch.authenticate)  # fmt: skip
    controller.start()
    try:
        mailer = Mailer(smtp_settings(port), None, project_dir=tmp_path,
                        tls_context=ssl.create_default_context(cafile=str(cert)))  # fmt: skip
        await mailer.send("confirmation", "a@x.io", VARS)
        untrusted = Mailer(smtp_settings(port), None, project_dir=tmp_path)
        with pytest.raises(MailError, match="CERTIFICATE_VERIFY_FAILED"):
            await untrusted.send("confirmation", "a@x.io", VARS)
    finally:
        controller.stop()
    assert catch.logins == [("mailer", "s3cret")]
    [(_, msg)] = catch.messages
    assert msg["Subject"] == "Confirm Your Signup"


# ------------------------------------------------------------------ the mail catcher


async def test_catcher_stores_in_postgres_when_smtp_is_off(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    # A host alone does not turn SMTP on: [auth.email.smtp] enabled = true does.
    settings = AuthSettings(smtp_enabled=False, smtp_host="127.0.0.1", smtp_port=free_port())
    mailer = Mailer(settings, pool, project_dir=tmp_path)
    assert not mailer.uses_smtp
    await mailer.send("confirmation", "New@X.io", {**VARS, "Email": "<new>"})
    await mailer.send("recovery", "other@x.io", VARS)
    [m] = await list_messages(pool, to="new@x.io")  # addresses match case-insensitively
    assert (m.to, m.kind, m.subject) == ("New@X.io", "confirmation", "Confirm Your Signup")
    assert "123456" in m.text and LINK in m.text and LINK.replace("&", "&amp;") in m.html
    assert m.created_at.tzinfo is not None
    newest_first = await list_messages(pool)
    assert [x.kind for x in newest_first] == ["recovery", "confirmation"]
    assert [x.kind for x in await list_messages(pool, limit=1)] == ["recovery"]


async def test_catcher_keeps_only_the_newest(pool: asyncpg.Pool, tmp_path: Path) -> None:
    mailer = Mailer(AuthSettings(), pool, project_dir=tmp_path, inbox_keep=3)
    for i in range(5):
        await mailer.send("magic_link", f"u{i}@x.io", VARS)
    kept = await list_messages(pool, limit=100)
    assert [m.to for m in kept] == ["u4@x.io", "u3@x.io", "u2@x.io"]


async def test_concurrent_sends_all_arrive(pool: asyncpg.Pool, tmp_path: Path) -> None:
    mailer = Mailer(AuthSettings(), pool, project_dir=tmp_path)
    await asyncio.gather(*(mailer.send("invite", f"c{i}@x.io", VARS) for i in range(20)))
    assert len(await list_messages(pool, limit=100)) == 20


# ------------------------------------------------------------------ config.toml templates


def write_config(project: Path, body: str) -> None:
    (project / "supabase").mkdir(exist_ok=True)
    (project / "supabase" / "config.toml").write_text(body)


def test_templates_from_config_toml(tmp_path: Path) -> None:
    templates = tmp_path / "supabase" / "templates"
    templates.mkdir(parents=True)
    (templates / "invite.html").write_text(
        '<h1>Join {{ .SiteURL }}</h1><a href="{{ .ConfirmationURL }}">Accept</a>'
    )
    write_config(tmp_path, """
[auth.email.template.invite]
subject = "Welcome to {{ .SiteURL }}"
content_path = "./supabase/templates/invite.html"

[auth.email.template.recovery]
subject = "Your reset link"
""")  # fmt: skip
    settings = load_settings(tmp_path, env={})
    assert settings.auth.email_templates == {
        "invite": {"subject": "Welcome to {{ .SiteURL }}",
                   "content_path": "./supabase/templates/invite.html"},
        "recovery": {"subject": "Your reset link"},
    }  # fmt: skip
    mailer = Mailer(settings.auth, None, project_dir=settings.project_dir)
    invite = mailer.render("invite", "a@x.io", VARS)
    assert invite.subject == "Welcome to http://app"
    assert invite.html.startswith("<h1>Join http://app</h1>")
    assert f"Accept <{LINK}>" in invite.text
    recovery = mailer.render("recovery", "a@x.io", VARS)  # subject only: default body
    assert recovery.subject == "Your reset link" and "Reset Password" in recovery.html

    # Edits apply without a restart; a file gone since start-up is a clear error at send.
    (templates / "invite.html").write_text("<p>v2 {{ .Token }}</p>")
    assert mailer.render("invite", "a@x.io", VARS).html == "<p>v2 123456</p>"
    (templates / "invite.html").unlink()
    with pytest.raises(MailError, match=r"auth\.email\.template\.invite\.content_path"):
        mailer.render("invite", "a@x.io", VARS)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[auth.email.template.invite]\ncontent_path = "./supabase/templates/nope.html"',
         "bad value for 'auth.email.template.invite.content_path': no file at"),
        ('[auth.email.template.welcome]\nsubject = "Hi"', "unknown template 'welcome'"),
        ('[auth.email.template.invite]\nbody = "<p>"', "template 'invite': unknown key 'body'"),
        ("[auth.email.template.invite]\nsubject = 3", "expected a string"),
    ],
)  # fmt: skip
def test_bad_template_config_is_a_config_error(tmp_path: Path, toml: str, message: str) -> None:
    write_config(tmp_path, toml)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")) as e:
        load_settings(tmp_path, env={})
    assert "config.toml" in str(e.value)


def test_env_reference_in_template_config(tmp_path: Path) -> None:
    write_config(tmp_path, '[auth.email.template.magic_link]\nsubject = "env(MAGIC_SUBJECT)"\n')
    settings = load_settings(tmp_path, env={"MAGIC_SUBJECT": "Sign in"})
    assert settings.auth.email_templates["magic_link"]["subject"] == "Sign in"


# ------------------------------------------------------------------ the HTTP inbox


@pytest.fixture
async def inbox(pool: asyncpg.Pool, keys: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The real routes, over the real table, in process (the live-server test mounts them)."""
    app = Starlette(routes=[Mount("/inbox/v1", routes=inbox_routes.routes)])
    app.state.gateway = Gateway(keys)
    app.state.pools = SimpleNamespace(admin=pool)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://inbox") as client:
        yield client


async def test_inbox_is_for_the_service_role_only(
    inbox: httpx.AsyncClient, pool: asyncpg.Pool, keys: Any, tmp_path: Path
) -> None:
    await Mailer(AuthSettings(), pool, project_dir=tmp_path).send("magic_link", "a@x.io", VARS)
    r = await inbox.get("/inbox/v1/messages")
    assert r.status_code == 401 and r.json()["message"] == "No API key found in request"
    r = await inbox.get("/inbox/v1/messages", headers={"apikey": "not-a-key"})
    assert r.status_code == 401 and r.json()["message"] == "Invalid API key"
    anon = {"apikey": keys.anon_key}
    for method, path in [("GET", "/messages"), ("GET", "/messages/1"), ("DELETE", "/messages")]:
        r = await inbox.request(method, "/inbox/v1" + path, headers=anon)
        assert r.status_code == 403 and "service_role" in r.json()["message"]
    assert len(await list_messages(pool)) == 1  # the anon DELETE removed nothing


async def test_inbox_lists_gets_and_clears(
    inbox: httpx.AsyncClient, pool: asyncpg.Pool, keys: Any, tmp_path: Path
) -> None:
    mailer = Mailer(AuthSettings(), pool, project_dir=tmp_path)
    await mailer.send("confirmation", "a@x.io", VARS)
    await mailer.send("magic_link", "b@x.io", VARS)
    await mailer.send("recovery", "A@x.io", VARS)
    svc = {"apikey": keys.service_role_key}
    r = await inbox.get("/inbox/v1/messages", headers=svc)
    assert r.status_code == 200
    listed = r.json()
    assert [m["kind"] for m in listed] == ["recovery", "magic_link", "confirmation"]
    assert set(listed[0]) == {"id", "to", "subject", "created_at", "kind", "text", "html"}
    assert dt.datetime.fromisoformat(listed[0]["created_at"]).tzinfo is not None
    r = await inbox.get("/inbox/v1/messages", params={"to": "a@x.io", "limit": "1"}, headers=svc)
    assert [m["to"] for m in r.json()] == ["A@x.io"]
    one = await inbox.get(f"/inbox/v1/messages/{listed[1]['id']}", headers=svc)
    assert one.status_code == 200 and one.json() == listed[1]
    assert (await inbox.get("/inbox/v1/messages/999999999", headers=svc)).status_code == 404
    # Bearer service_role works as well as the apikey alone.
    bearer = {"apikey": keys.anon_key, "Authorization": f"Bearer {keys.service_role_key}"}
    assert (await inbox.get("/inbox/v1/messages", headers=bearer)).status_code == 200

    r = await inbox.delete("/inbox/v1/messages", params={"to": "a@x.io"}, headers=svc)
    assert r.status_code == 200 and r.json() == {"deleted": 2}
    assert [m.to for m in await list_messages(pool)] == ["b@x.io"]
    r = await inbox.delete("/inbox/v1/messages", headers=svc)
    assert r.json() == {"deleted": 1} and await list_messages(pool) == []


@pytest.mark.parametrize(
    "path",
    [
        "/messages?limit=0", "/messages?limit=-1", "/messages?limit=abc", "/messages?limit=1001",
        "/messages?limit=%C2%B2", "/messages?limit=99999999999999999999999", "/messages?limit=",
        "/messages?to=", "/messages?to=" + "a" * 400, "/messages/abc", "/messages/-1",
        "/messages/1.5", "/messages/%C2%B2", "/messages/99999999999999999999",
    ],
)  # fmt: skip
async def test_inbox_bad_input_is_a_400(inbox: httpx.AsyncClient, keys: Any, path: str) -> None:
    r = await inbox.get("/inbox/v1" + path, headers={"apikey": keys.service_role_key})
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/json" and r.json()["message"]


# ------------------------------------------------------------------ live server and CLI


def test_live_server_inbox_and_cli(project: Path) -> None:
    with LiveServer(project) as server:

        async def send() -> None:
            p = await asyncpg.create_pool(server.info["DB URL"], min_size=1, max_size=2)
            try:
                mailer = Mailer(AuthSettings(), p, project_dir=project)
                await mailer.send("magic_link", "dev@x.io", VARS)
                await mailer.send("invite", "boss@x.io", VARS)
            finally:
                await p.close()

        # Another process of the fleet sends; this one serves the shared inbox.
        asyncio.run(send())
        with server.client() as c:
            r = c.get("/inbox/v1/messages", headers={"apikey": server.service_key})
            assert r.status_code == 200, r.text
            assert [m["to"] for m in r.json()] == ["boss@x.io", "dev@x.io"]
            r = c.get("/inbox/v1/messages", headers={"apikey": server.anon_key})
            assert r.status_code == 403

        out = supalite("mail", "--to", "dev@x.io", cwd=project)
        assert out.returncode == 0, out.stderr
        assert "dev@x.io  [magic_link]  Your Magic Link" in out.stdout
        assert LINK in out.stdout and "123456" in out.stdout and "boss@x.io" not in out.stdout
        out = supalite("mail", "--json", "--limit", "1", cwd=project)
        [only] = json.loads(out.stdout)
        assert (only["to"], only["subject"]) == ("boss@x.io", "You have been invited")
        out = supalite("mail", "--limit", "0", cwd=project)
        assert out.returncode == 2 and "positive integer" in out.stderr
        out = supalite("mail", "--clear", "--to", "boss@x.io", cwd=project)
        assert out.returncode == 0 and out.stdout.strip() == "Deleted 1 message."

    # With the server stopped, the command starts the database itself; the inbox persisted.
    out = supalite("mail", cwd=project)
    assert out.returncode == 0, out.stderr
    assert "dev@x.io" in out.stdout and "boss@x.io" not in out.stdout
    assert supalite("mail", "--clear", cwd=project).stdout.strip() == "Deleted 1 message."
    assert supalite("mail", cwd=project).stdout.strip() == "No messages."
