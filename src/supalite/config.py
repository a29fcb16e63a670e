"""One Settings object, from three sources: environment > config file > defaults.

The config file is either `supabase/config.toml` (the Supabase CLI's format and key names) or a
JSON file given with `--config`, in the format users of Supabase MCP servers already write. Both
are mapped onto the same fields through one table (`FIELDS`), so a value means the same thing
whichever way it arrives, and an unknown key or a bad value is reported with its name and file.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    """A configuration problem, phrased as one line that names the key and where it came from."""


# --------------------------------------------------------------------------------------------
# The settings themselves.  Grouped as config.toml groups them; later services read their own
# group.  Defaults are those of `supabase init` + `supabase start`.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiSettings:
    host: str = "127.0.0.1"
    port: int = 54321
    workers: int = 1
    public_url: str | None = None  # the URL clients use; defaults to http://host:port
    schemas: tuple[str, ...] = ("public", "graphql_public")
    extra_search_path: tuple[str, ...] = ("public", "extensions")
    max_rows: int | None = 1000
    anon_role: str = "anon"
    db_pre_request: str | None = None
    aggregates_enabled: bool = True
    db_plan_enabled: bool = False  # Accept: application/vnd.pgrst.plan (PostgREST's default)
    max_body_bytes: int = 10 * 1024 * 1024


@dataclass(frozen=True)
class DbSettings:
    url: str | None = None  # DATABASE_URL: bootstrap into that server instead of the embedded one
    port: int = 54322  # the embedded server's TCP port
    major_version: int = 15
    pool_size: int = 20
    idle_timeout: float = 30.0  # seconds
    connection_timeout: float = 60.0  # seconds
    ssl_reject_unauthorized: bool = True
    seed_enabled: bool = True
    seed_paths: tuple[str, ...] = ("./seed.sql",)


@dataclass(frozen=True)
class AuthSettings:
    enabled: bool = True
    site_url: str = "http://127.0.0.1:3000"
    additional_redirect_urls: tuple[str, ...] = ("https://127.0.0.1:3000",)
    jwt_secret: str | None = None  # generated on first start and kept in the data folder
    jwt_expiry: int = 3600
    jwt_issuer: str | None = None  # default: <api_url>/auth/v1, as GoTrue's API_EXTERNAL_URL
    signing_keys_path: str | None = None  # JSON list of private JWKs; relative to supabase/
    anon_key: str | None = None
    service_role_key: str | None = None
    enable_signup: bool = True
    enable_anonymous_sign_ins: bool = False
    enable_manual_linking: bool = False
    enable_refresh_token_rotation: bool = True
    refresh_token_reuse_interval: int = 10
    minimum_password_length: int = 6
    password_requirements: str = ""
    email_enable_signup: bool = True
    email_enable_confirmations: bool = False
    email_double_confirm_changes: bool = True
    email_secure_password_change: bool = False
    email_max_frequency: float = 1.0  # seconds
    email_otp_length: int = 6
    email_otp_expiry: int = 3600
    smtp_enabled: bool = False
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_pass: str = ""
    smtp_admin_email: str = "admin@email.com"
    smtp_sender_name: str = ""
    # [auth.email.template.<kind>] subject / content_path (relative to the project folder)
    email_templates: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    rate_limits: Mapping[str, int] = field(
        default_factory=lambda: {
            "email_sent": 2,
            "sms_sent": 30,
            "anonymous_users": 30,
            "token_refresh": 150,
            "sign_in_sign_ups": 30,
            "token_verifications": 30,
            "web3": 30,
        }
    )
    mfa_max_enrolled_factors: int = 10
    mfa_totp_enroll_enabled: bool = True
    mfa_totp_verify_enabled: bool = True
    custom_access_token_hook: str | None = None  # pg-functions://postgres/<schema>/<fn>
    providers: tuple[Mapping[str, Any], ...] = ()
    login_redirect_url: str | None = None
    logout_redirect_url: str | None = None


@dataclass(frozen=True)
class RealtimeSettings:
    enabled: bool = True
    events_per_second: int = 10
    # Supabase Realtime's self-hosted defaults (docs/realtime.md "Limits").
    max_joins_per_second: int = 100
    max_concurrent_users: int = 200
    max_presence_events_per_second: int = 1000
    max_client_presence_events_per_window: int = 5
    client_presence_window_ms: int = 30_000


@dataclass(frozen=True)
class StorageSettings:
    enabled: bool = True
    file_size_limit: int = 50 * 1024 * 1024
    allowed_mime_types: tuple[str, ...] = ()
    buckets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Where object bytes live: "file" (the data folder) or "s3" (docs/storage.md).
    backend: str = "file"
    s3_bucket: str | None = None
    s3_endpoint: str | None = None  # None: AWS itself
    s3_region: str | None = None
    s3_force_path_style: bool = False
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = field(default=None, repr=False)  # never printed
    s3_prefix: str = ""
    # The disk backend's ETag, Supabase's STORAGE_FILE_ETAG_ALGORITHM: "md5" (its default) or
    # "mtime" (docs/storage.md, Throughput).
    file_etag_algorithm: str = "md5"
    # Image transformations (/render/image): off answers their routes as Supabase does when
    # ENABLE_IMAGE_TRANSFORMATION is false.  The limits, None: transform.Limits' defaults.
    image_transformation_enabled: bool = True
    image_min_size: int | None = None  # px (IMAGE_TRANSFORMATION_LIMIT_MIN_SIZE)
    image_max_size: int | None = None  # px (IMAGE_TRANSFORMATION_LIMIT_MAX_SIZE)
    image_max_source_pixels: int | None = None  # (IMGPROXY_MAX_SRC_RESOLUTION, megapixels)
    image_max_source_bytes: int | None = None  # (IMGPROXY_MAX_SRC_FILE_SIZE)


@dataclass(frozen=True)
class CronSettings:
    enabled: bool = True  # run the jobs of the `cron` emulation (never with the real pg_cron)
    job_timeout: float = 3600.0  # seconds; each job runs under this statement_timeout (0: none)


@dataclass(frozen=True)
class FunctionsSettings:
    enabled: bool = True
    # `[functions.<name>]` tables as the Supabase CLI writes them (verify_jwt, enabled, ...).
    per_function: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    wall_time: float = 150.0  # seconds: Supabase's request idle timeout (504 past it)
    memory_limit: int = 256 * 1024 * 1024  # bytes per worker, as edge-runtime's memoryLimitMb
    max_request_size: int = 20 * 1024 * 1024
    max_response_size: int = 100 * 1024 * 1024
    workers: int = 2  # worker processes per function at most
    deno: str | None = None  # the Deno binary for TypeScript functions (None: look for one)


@dataclass(frozen=True)
class Settings:
    project_dir: Path
    data_dir: Path
    project_id: str = "supalite"
    api: ApiSettings = field(default_factory=ApiSettings)
    db: DbSettings = field(default_factory=DbSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    realtime: RealtimeSettings = field(default_factory=RealtimeSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    cron: CronSettings = field(default_factory=CronSettings)
    functions: FunctionsSettings = field(default_factory=FunctionsSettings)
    sources: tuple[str, ...] = ()  # which files contributed, for `supalite status`

    @property
    def supabase_dir(self) -> Path:
        return self.project_dir / "supabase"

    @property
    def api_url(self) -> str:
        if self.api.public_url:
            return self.api.public_url.rstrip("/")
        host = "127.0.0.1" if self.api.host in ("0.0.0.0", "::") else self.api.host
        return f"http://{host}:{self.api.port}"

    @property
    def embedded(self) -> bool:
        return self.db.url is None


# --------------------------------------------------------------------------------------------
# Value parsers.  Each takes the raw value (str from env, any from TOML/JSON) and returns the
# typed value or raises ValueError with a short reason.
# --------------------------------------------------------------------------------------------

Parser = Callable[[Any], Any]


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(v, str) and v.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _int(lo: int, hi: int) -> Parser:
    def parse(v: Any) -> int:
        if isinstance(v, bool):
            raise ValueError("expected an integer")
        if isinstance(v, str):
            if not re.fullmatch(r"\s*-?\d+\s*", v):
                raise ValueError("expected an integer")
            v = int(v)
        if not isinstance(v, int):
            raise ValueError("expected an integer")
        if not lo <= v <= hi:
            raise ValueError(f"must be between {lo} and {hi}")
        return v

    return parse


def _optional_rows(v: Any) -> int | None:
    n = _int(0, 2**31 - 1)(v)
    return n or None  # 0 means "no cap", as PostgREST's db-max-rows unset


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError("expected a string")
    return v


def _optional_str(v: Any) -> str | None:
    return _str(v) or None


def _url(v: Any) -> str:
    s = _str(v)
    if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", s):
        raise ValueError("expected a URL such as http://host:port")
    return s


def _db_url(v: Any) -> str | None:
    s = _str(v).strip()
    if not s:
        return None
    if not re.match(r"^postgres(ql)?://", s):
        raise ValueError("expected postgresql://user:password@host:port/dbname")
    return s


def _str_list(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):  # env form: comma-separated
        return tuple(p.strip() for p in v.split(",") if p.strip())
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ValueError("expected a list of strings")
    return tuple(v)


_SIZE_UNITS = {
    "": 1, "b": 1,
    "kb": 1000, "mb": 1000**2, "gb": 1000**3,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3,
    "k": 1024, "m": 1024**2, "g": 1024**3,
}  # fmt: skip


def _size(v: Any) -> int:
    """'50MiB', '5MB', '500KB' or a plain byte count, as config.toml's file_size_limit."""
    if isinstance(v, int) and not isinstance(v, bool):
        n = v
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", _str(v))
        if not m or m.group(2).lower() not in _SIZE_UNITS:
            raise ValueError("expected a size such as 50MiB, 5MB or 500KB")
        n = int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])
    if n <= 0:
        raise ValueError("must be positive")
    return n


def _megapixels(v: Any) -> int:
    """imgproxy's resolution limits: megapixels, fractions allowed ('16.8'); in pixels."""
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise ValueError("expected a number of megapixels")
    try:
        n = float(v)
    except ValueError:
        raise ValueError("expected a number of megapixels") from None
    if not 0 < n < 1e6:
        raise ValueError("must be a positive number of megapixels")
    return int(n * 1_000_000)


def _duration(v: Any) -> float:
    """'1s', '500ms', '2m', '1h' (Go durations as config.toml writes them) or seconds."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", _str(v))
    if not m:
        raise ValueError("expected a duration such as 1s, 500ms or 5m")
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]
    return float(m.group(1)) * float(scale)


def _millis(v: Any) -> float:
    """Milliseconds (the JSON format's unit) to seconds."""
    ms: int = _int(0, 86_400_000)(v)
    return ms / 1000.0


def _seconds(v: Any) -> int:
    n: int = _int(1, 604_800)(v)
    return n


def _rate_limits(v: Any) -> Mapping[str, int]:
    if not isinstance(v, dict):
        raise ValueError("expected a table of integers")
    known = set(AuthSettings().rate_limits)
    out = dict(AuthSettings().rate_limits)
    for k, n in v.items():
        if k not in known:
            raise ValueError(f"unknown rate limit '{k}' (known: {', '.join(sorted(known))})")
        out[k] = _int(0, 10**9)(n)
    return out


def _hook_uri(v: Any) -> str | None:
    s = _str(v)
    if s and not re.fullmatch(r"pg-functions://[^/]+/[A-Za-z_][\w$]*/[A-Za-z_][\w$-]*", s):
        raise ValueError("expected pg-functions://<database>/<schema>/<function>")
    return s or None


def _providers(v: Any) -> tuple[Mapping[str, Any], ...]:
    """JSON `auth.providers`: names ("github") or objects ({"provider": "github", ...})."""
    if not isinstance(v, list):
        raise ValueError("expected a list of provider names or objects")
    out: list[Mapping[str, Any]] = []
    allowed = {"provider", "name", "enabled", "clientId", "secret", "redirectUri", "url", "scopes"}
    for item in v:
        if isinstance(item, str):
            out.append({"provider": item, "enabled": True})
        elif isinstance(item, dict):
            unknown = set(item) - allowed
            if unknown:
                raise ValueError(f"unknown provider key '{sorted(unknown)[0]}'")
            name = item.get("provider", item.get("name"))
            if not isinstance(name, str) or not name:
                raise ValueError("each provider needs a 'provider' (or 'name') string")
            out.append({**item, "provider": name, "enabled": item.get("enabled", True)})
        else:
            raise ValueError("expected a list of provider names or objects")
    return tuple(out)


EMAIL_TEMPLATE_KINDS = (
    "confirmation", "invite", "magic_link", "recovery", "email_change", "reauthentication",
)  # fmt: skip


def _function_tables(v: Any) -> Mapping[str, Mapping[str, Any]]:
    """TOML `[functions.<name>]` tables (the Supabase CLI's keys)."""
    if not isinstance(v, dict):
        raise ValueError("expected tables such as [functions.hello]")
    allowed = {"enabled", "verify_jwt", "import_map", "entrypoint", "static_files"}
    out: dict[str, Mapping[str, Any]] = {}
    for name, spec in v.items():
        if not isinstance(spec, dict):
            raise ValueError(f"[functions.{name}] must be a table")
        unknown = set(spec) - allowed
        if unknown:
            raise ValueError(f"unknown key '{sorted(unknown)[0]}' in [functions.{name}]")
        for key in ("enabled", "verify_jwt"):
            if key in spec:
                spec = {**spec, key: _bool(spec[key])}
        out[name] = spec
    return out


def _email_templates(v: Any) -> Mapping[str, Mapping[str, str]]:
    """TOML `[auth.email.template.<kind>]` tables, each with `subject` and/or `content_path`."""
    if not isinstance(v, dict):
        raise ValueError("expected tables such as [auth.email.template.invite]")
    out: dict[str, Mapping[str, str]] = {}
    for kind, spec in v.items():
        if kind not in EMAIL_TEMPLATE_KINDS:
            raise ValueError(
                f"unknown template '{kind}' (known: {', '.join(EMAIL_TEMPLATE_KINDS)})"
            )
        if not isinstance(spec, dict):
            raise ValueError(f"template '{kind}' must be a table")
        unknown = set(spec) - {"subject", "content_path"}
        if unknown:
            raise ValueError(f"template '{kind}': unknown key '{sorted(unknown)[0]}'")
        out[kind] = {key: _str(value) for key, value in spec.items()}
    return out


def _check_template_files(settings: Settings, source: Path) -> None:
    """A content_path must name a file, as the Supabase CLI checks when it loads config.toml."""
    for kind, spec in settings.auth.email_templates.items():
        content_path = spec.get("content_path")
        if content_path and not (settings.project_dir / content_path).is_file():
            raise ConfigError(
                f"{source}: bad value for 'auth.email.template.{kind}.content_path': "
                f"no file at {settings.project_dir / content_path}"
            )


def _check_objects_paths(settings: Settings, source: Path) -> None:
    """A bucket's objects_path must exist: relative to the supabase/ folder, as the Supabase CLI
    resolves it (its files are uploaded at start: storage/seed.py)."""
    if not settings.storage.enabled:
        return  # nothing is uploaded then
    for name, spec in settings.storage.buckets.items():
        objects_path = spec.get("objects_path")
        if objects_path and not (settings.supabase_dir / objects_path).exists():
            raise ConfigError(
                f"{source}: bad value for 'storage.buckets.{name}.objects_path': "
                f"no file or folder at {settings.supabase_dir / objects_path}"
            )


def _buckets(v: Any) -> Mapping[str, Mapping[str, Any]]:
    """JSON `storage.buckets`: a list of names; TOML `[storage.buckets.<name>]` tables."""
    if isinstance(v, list):
        if not all(isinstance(b, str) and b for b in v):
            raise ValueError("expected a list of bucket names")
        return {b: {} for b in v}
    if isinstance(v, dict):
        allowed = {"public", "file_size_limit", "allowed_mime_types", "objects_path"}
        out: dict[str, Mapping[str, Any]] = {}
        for name, spec in v.items():
            if not isinstance(spec, dict):
                raise ValueError(f"bucket '{name}' must be a table")
            unknown = set(spec) - allowed
            if unknown:
                raise ValueError(f"bucket '{name}': unknown key '{sorted(unknown)[0]}'")
            parsed: dict[str, Any] = {}
            if "public" in spec:
                parsed["public"] = _bool(spec["public"])
            if "file_size_limit" in spec:
                parsed["file_size_limit"] = _size(spec["file_size_limit"])
            if "allowed_mime_types" in spec:
                parsed["allowed_mime_types"] = _str_list(spec["allowed_mime_types"])
            if "objects_path" in spec:
                parsed["objects_path"] = _str(spec["objects_path"])
            out[name] = parsed
        return out
    raise ValueError("expected a list of bucket names")


def _optional_url(v: Any) -> str | None:
    return _url(v) if _str(v).strip() else None  # "": unset, as `env(NAME)` of an unset NAME


def _etag_algorithm(v: Any) -> str:
    """Supabase Storage's STORAGE_FILE_ETAG_ALGORITHM: `md5` or `mtime`."""
    s = _str(v).strip().lower()
    if s not in ("md5", "mtime"):
        raise ValueError("expected 'md5' or 'mtime'")
    return s


def _storage_backend(v: Any) -> str:
    """Supabase Storage's STORAGE_BACKEND: `file` (here: the data folder; `disk` too) or `s3`."""
    s = _str(v).strip().lower()
    if s in ("file", "disk"):
        return "file"
    if s == "s3":
        return "s3"
    raise ValueError("expected 'file' or 's3'")


# --------------------------------------------------------------------------------------------
# The mapping table: one row per setting, naming where it may come from in each source.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    target: str  # "group.attr" on Settings, or "attr" for a top-level one
    parse: Parser
    toml: str | None = None  # dotted key in config.toml
    json: str | None = None  # dotted key in the JSON format, under "supabase"
    env: tuple[str, ...] = ()  # environment variables, first set one wins


FIELDS: tuple[Field, ...] = (
    Field("project_id", _str, toml="project_id", env=("SUPALITE_PROJECT_ID",)),
    Field("api.host", _str, env=("SUPALITE_HOST",)),
    Field("api.port", _int(1, 65535), toml="api.port", env=("SUPALITE_PORT", "PORT")),
    Field("api.workers", _int(1, 64), env=("SUPALITE_WORKERS",)),
    Field("api.public_url", _url, json="url", env=("SUPALITE_PUBLIC_URL", "API_EXTERNAL_URL")),
    Field("api.schemas", _str_list, toml="api.schemas", env=("PGRST_DB_SCHEMAS",)),
    Field("api.extra_search_path", _str_list, toml="api.extra_search_path",
          env=("PGRST_DB_EXTRA_SEARCH_PATH",)),
    Field("api.max_rows", _optional_rows, toml="api.max_rows", env=("PGRST_DB_MAX_ROWS",)),
    Field("api.anon_role", _str, env=("PGRST_DB_ANON_ROLE",)),
    Field("api.db_pre_request", _optional_str, toml="api.db_pre_request",
          env=("PGRST_DB_PRE_REQUEST",)),
    Field("api.aggregates_enabled", _bool, toml="api.aggregates_enabled",
          env=("PGRST_DB_AGGREGATES_ENABLED",)),
    Field("api.db_plan_enabled", _bool, toml="api.db_plan_enabled",
          env=("PGRST_DB_PLAN_ENABLED",)),
    Field("db.url", _db_url, env=("DATABASE_URL", "SUPALITE_DB_URL")),
    Field("db.port", _int(1, 65535), toml="db.port", env=("SUPALITE_DB_PORT",)),
    Field("db.major_version", _int(15, 99), toml="db.major_version"),
    Field("db.pool_size", _int(1, 1000), json="database.poolSize", env=("SUPALITE_DB_POOL_SIZE",)),
    Field("db.idle_timeout", _millis, json="database.idleTimeout"),
    Field("db.connection_timeout", _millis, json="database.connectionTimeout"),
    Field("db.ssl_reject_unauthorized", _bool, json="database.ssl.rejectUnauthorized"),
    Field("db.seed_enabled", _bool, toml="db.seed.enabled"),
    Field("db.seed_paths", _str_list, toml="db.seed.sql_paths"),
    Field("auth.enabled", _bool, toml="auth.enabled"),
    Field("auth.site_url", _url, toml="auth.site_url", env=("SITE_URL", "GOTRUE_SITE_URL")),
    Field("auth.additional_redirect_urls", _str_list, toml="auth.additional_redirect_urls",
          env=("ADDITIONAL_REDIRECT_URLS", "GOTRUE_URI_ALLOW_LIST")),
    Field("auth.jwt_secret", _str, env=("SUPALITE_JWT_SECRET", "JWT_SECRET")),
    Field("auth.jwt_expiry", _seconds, toml="auth.jwt_expiry", json="auth.sessionConfig.expiresIn",
          env=("JWT_EXPIRY", "GOTRUE_JWT_EXP")),
    Field("auth.jwt_issuer", _optional_str, toml="auth.jwt_issuer"),
    Field("auth.signing_keys_path", _optional_str, toml="auth.signing_keys_path",
          env=("SUPALITE_SIGNING_KEYS_PATH",)),
    Field("auth.anon_key", _str, json="keys.anon", env=("SUPALITE_ANON_KEY", "ANON_KEY")),
    Field("auth.service_role_key", _str, json="keys.serviceRole",
          env=("SUPALITE_SERVICE_ROLE_KEY", "SERVICE_ROLE_KEY")),
    Field("auth.enable_signup", _bool, toml="auth.enable_signup"),
    Field("auth.enable_anonymous_sign_ins", _bool, toml="auth.enable_anonymous_sign_ins"),
    Field("auth.enable_manual_linking", _bool, toml="auth.enable_manual_linking"),
    Field("auth.enable_refresh_token_rotation", _bool, toml="auth.enable_refresh_token_rotation",
          json="auth.sessionConfig.refreshTokenRotation"),
    Field("auth.refresh_token_reuse_interval", _int(0, 86400),
          toml="auth.refresh_token_reuse_interval",
          json="auth.sessionConfig.refreshTokenReuseInterval"),
    Field("auth.minimum_password_length", _int(6, 1024), toml="auth.minimum_password_length"),
    Field("auth.password_requirements", _str, toml="auth.password_requirements"),
    Field("auth.email_enable_signup", _bool, toml="auth.email.enable_signup"),
    Field("auth.email_enable_confirmations", _bool, toml="auth.email.enable_confirmations"),
    Field("auth.email_double_confirm_changes", _bool, toml="auth.email.double_confirm_changes"),
    Field("auth.email_secure_password_change", _bool, toml="auth.email.secure_password_change"),
    Field("auth.email_max_frequency", _duration, toml="auth.email.max_frequency"),
    Field("auth.email_otp_length", _int(6, 10), toml="auth.email.otp_length"),
    Field("auth.email_otp_expiry", _int(1, 86400), toml="auth.email.otp_expiry"),
    Field("auth.smtp_enabled", _bool, toml="auth.email.smtp.enabled"),
    Field("auth.smtp_host", _str, toml="auth.email.smtp.host", env=("SMTP_HOST",)),
    Field("auth.smtp_port", _int(1, 65535), toml="auth.email.smtp.port", env=("SMTP_PORT",)),
    Field("auth.smtp_user", _str, toml="auth.email.smtp.user", env=("SMTP_USER",)),
    Field("auth.smtp_pass", _str, toml="auth.email.smtp.pass", env=("SMTP_PASS",)),
    Field("auth.smtp_admin_email", _str, toml="auth.email.smtp.admin_email",
          env=("SMTP_ADMIN_EMAIL",)),
    Field("auth.smtp_sender_name", _str, toml="auth.email.smtp.sender_name",
          env=("SMTP_SENDER_NAME",)),
    Field("auth.email_templates", _email_templates, toml="auth.email.template"),
    Field("auth.rate_limits", _rate_limits, toml="auth.rate_limit"),
    Field("auth.mfa_max_enrolled_factors", _int(1, 100), toml="auth.mfa.max_enrolled_factors"),
    Field("auth.mfa_totp_enroll_enabled", _bool, toml="auth.mfa.totp.enroll_enabled"),
    Field("auth.mfa_totp_verify_enabled", _bool, toml="auth.mfa.totp.verify_enabled"),
    Field("auth.custom_access_token_hook", _hook_uri, toml="auth.hook.custom_access_token.uri"),
    Field("auth.providers", _providers, json="auth.providers"),
    Field("auth.login_redirect_url", _url, json="auth.redirectUrls.login"),
    Field("auth.logout_redirect_url", _url, json="auth.redirectUrls.logout"),
    Field("realtime.enabled", _bool, toml="realtime.enabled", json="realtime.enabled"),
    Field("realtime.events_per_second", _int(1, 100_000),
          json="realtime.params.eventsPerSecond"),
    # Env names as Supabase Realtime reads them (config/runtime.exs).
    Field("realtime.max_joins_per_second", _int(1, 1_000_000),
          json="realtime.params.maxJoinsPerSecond", env=("TENANT_MAX_JOINS_PER_SECOND",)),
    Field("realtime.max_concurrent_users", _int(1, 1_000_000),
          json="realtime.params.maxConcurrentUsers", env=("TENANT_MAX_CONCURRENT_USERS",)),
    Field("realtime.max_presence_events_per_second", _int(1, 1_000_000),
          json="realtime.params.maxPresenceEventsPerSecond"),
    Field("realtime.max_client_presence_events_per_window", _int(1, 1_000_000),
          json="realtime.params.maxClientPresenceEventsPerWindow",
          env=("CLIENT_PRESENCE_MAX_CALLS",)),
    Field("realtime.client_presence_window_ms", _int(1, 86_400_000),
          json="realtime.params.clientPresenceWindowMs", env=("CLIENT_PRESENCE_WINDOW_MS",)),
    Field("storage.enabled", _bool, toml="storage.enabled"),
    Field("storage.file_size_limit", _size, toml="storage.file_size_limit",
          json="storage.maxFileSize", env=("FILE_SIZE_LIMIT",)),
    Field("storage.allowed_mime_types", _str_list, json="storage.allowedMimeTypes"),
    Field("storage.buckets", _buckets, toml="storage.buckets", json="storage.buckets"),
    # The S3 backend: env names as Supabase's self-hosted Storage reads them (src/config.ts).
    Field("storage.backend", _storage_backend, toml="storage.backend", env=("STORAGE_BACKEND",)),
    Field("storage.file_etag_algorithm", _etag_algorithm, env=("STORAGE_FILE_ETAG_ALGORITHM",)),
    Field("storage.s3_bucket", _optional_str, toml="storage.s3.bucket",
          env=("STORAGE_S3_BUCKET", "GLOBAL_S3_BUCKET")),
    Field("storage.s3_endpoint", _optional_url, toml="storage.s3.endpoint",
          env=("STORAGE_S3_ENDPOINT", "GLOBAL_S3_ENDPOINT")),
    Field("storage.s3_region", _optional_str, toml="storage.s3.region",
          env=("STORAGE_S3_REGION", "REGION")),
    Field("storage.s3_force_path_style", _bool, toml="storage.s3.force_path_style",
          env=("STORAGE_S3_FORCE_PATH_STYLE", "GLOBAL_S3_FORCE_PATH_STYLE")),
    Field("storage.s3_access_key_id", _optional_str, toml="storage.s3.access_key_id",
          env=("AWS_ACCESS_KEY_ID",)),
    Field("storage.s3_secret_access_key", _optional_str, toml="storage.s3.secret_access_key",
          env=("AWS_SECRET_ACCESS_KEY",)),
    Field("storage.s3_prefix", _str, toml="storage.s3.prefix"),
    # Image transformations: the CLI's key, and the env names of Supabase's Storage
    # (src/config.ts) and of the imgproxy it runs (as the CLI and docker-compose set them).
    Field("storage.image_transformation_enabled", _bool,
          toml="storage.image_transformation.enabled",
          env=("IMAGE_TRANSFORMATION_ENABLED", "ENABLE_IMAGE_TRANSFORMATION")),
    Field("storage.image_min_size", _int(1, 100_000),
          env=("IMAGE_TRANSFORMATION_LIMIT_MIN_SIZE", "IMG_LIMITS_MIN_SIZE")),
    Field("storage.image_max_size", _int(1, 100_000),
          env=("IMAGE_TRANSFORMATION_LIMIT_MAX_SIZE", "IMG_LIMITS_MAX_SIZE")),
    Field("storage.image_max_source_pixels", _megapixels, env=("IMGPROXY_MAX_SRC_RESOLUTION",)),
    Field("storage.image_max_source_bytes", _size, env=("IMGPROXY_MAX_SRC_FILE_SIZE",)),
    Field("cron.enabled", _bool, toml="cron.enabled", env=("SUPALITE_CRON_ENABLED",)),
    Field("cron.job_timeout", _duration, toml="cron.job_timeout",
          env=("SUPALITE_CRON_JOB_TIMEOUT",)),
    Field("functions.enabled", _bool, env=("SUPALITE_FUNCTIONS_ENABLED",)),
    Field("functions.per_function", _function_tables, toml="functions"),
    Field("functions.wall_time", _duration, env=("SUPALITE_FUNCTIONS_WALL_TIME",)),
    Field("functions.memory_limit", _size, env=("SUPALITE_FUNCTIONS_MEMORY_LIMIT",)),
    Field("functions.max_request_size", _size, env=("SUPALITE_FUNCTIONS_MAX_REQUEST_SIZE",)),
    Field("functions.max_response_size", _size, env=("SUPALITE_FUNCTIONS_MAX_RESPONSE_SIZE",)),
    Field("functions.workers", _int(1, 64), env=("SUPALITE_FUNCTIONS_WORKERS",)),
    Field("functions.deno", _optional_str, env=("SUPALITE_DENO",)),
)  # fmt: skip

# config.toml keys that the Supabase CLI knows and supalite accepts without using (yet): a real
# project's config.toml must load unchanged.  Whole tables are named with a trailing ".*".
_TOML_ACCEPTED = frozenset({
    "api.enabled", "api.tls.*", "db.shadow_port", "db.pooler.*", "db.vault.*",
    "db.migrations.*", "db.network_restrictions.*", "db.root_key", "db.settings.*",
    "realtime.ip_version", "realtime.max_header_length", "studio.*", "inbucket.*",
    "storage.image_transformation.*", "storage.s3_protocol.*", "storage.analytics.*",
    "storage.vector.*",
    "auth.captcha.*",
    "auth.email.notification.*", "auth.sms.*", "auth.sessions.*", "auth.hook.*",
    "auth.mfa.phone.*", "auth.mfa.web_authn.*", "auth.external.*", "auth.web3.*",
    "auth.third_party.*", "auth.oauth_server.*", "auth.email.smtp.*",
    "edge_runtime.*", "analytics.*", "experimental.*", "functions.*", "remotes.*",
})  # fmt: skip

# The JSON format's own known objects (values are free-form below these).
_JSON_ACCEPTED: frozenset[str] = frozenset()


def _walk(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Leaf (dotted key, value) pairs.  Tables that a Field takes whole are leaves too."""
    whole = {f.toml for f in FIELDS} | {f.json for f in FIELDS}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and key not in whole:
            yield from _walk(v, key + ".")
        else:
            yield key, v


def _accepted(key: str, accepted: frozenset[str]) -> bool:
    parts = key.split(".")
    return key in accepted or any(
        ".".join(parts[:i]) + ".*" in accepted for i in range(1, len(parts))
    )


_ENV_REF = re.compile(r"^env\((\w+)\)$")


def _resolve_env_refs(value: Any, env: Mapping[str, str]) -> Any:
    """config.toml's `env(NAME)` substitution, as the Supabase CLI does it."""
    if isinstance(value, str):
        m = _ENV_REF.match(value)
        return env.get(m.group(1), "") if m else value
    if isinstance(value, list):
        return [_resolve_env_refs(v, env) for v in value]
    if isinstance(value, dict):
        return {k: _resolve_env_refs(v, env) for k, v in value.items()}
    return value


def _read_file_values(path: Path, kind: str, env: Mapping[str, str]) -> dict[str, Any]:
    """Values keyed by Field.target from one config file; ConfigError names key and file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config file: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: config file is not UTF-8 text") from e
    by_key: dict[str, Field]
    tree: Any
    if kind == "toml":
        try:
            tree = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: invalid TOML: {e}") from e
        tree = _resolve_env_refs(tree, env)
        by_key = {f.toml: f for f in FIELDS if f.toml}
        accepted = _TOML_ACCEPTED
    else:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: invalid JSON: {e.msg} (line {e.lineno})") from e
        if (
            not isinstance(doc, dict)
            or set(doc) != {"supabase"}
            or not isinstance(doc["supabase"], dict)
        ):
            raise ConfigError(f'{path}: expected one top-level object {{"supabase": {{...}}}}')
        tree = doc["supabase"]
        by_key = {f.json: f for f in FIELDS if f.json}
        accepted = _JSON_ACCEPTED
    out: dict[str, Any] = {}
    for key, raw in _walk(tree):
        f = by_key.get(key)
        if f is None:
            if _accepted(key, accepted):
                continue
            where = key if kind == "toml" else f"supabase.{key}"
            raise ConfigError(f"{path}: unknown key '{where}'")
        try:
            out[f.target] = f.parse(raw)
        except ValueError as e:
            where = key if kind == "toml" else f"supabase.{key}"
            raise ConfigError(f"{path}: bad value for '{where}': {e}") from e
    return out


def _env_values(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in FIELDS:
        for name in f.env:
            if name in env and env[name] != "":
                try:
                    out[f.target] = f.parse(env[name])
                except ValueError as e:
                    raise ConfigError(f"environment variable {name}: bad value: {e}") from e
                break
    return out


def _apply(settings: Settings, values: Mapping[str, Any]) -> Settings:
    groups: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    for target, value in values.items():
        if "." in target:
            group, attr = target.split(".", 1)
            groups.setdefault(group, {})[attr] = value
        else:
            top[target] = value
    for group, changes in groups.items():
        top[group] = replace(getattr(settings, group), **changes)
    return replace(settings, **top)


def load_settings(
    project_dir: Path | str | None = None,
    *,
    config_file: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Settings for a project folder: env > --config file (JSON or TOML) > config.toml > defaults.

    `overrides` (command-line flags such as --port) win over everything.
    """
    env = dict(os.environ if env is None else env)
    project = Path(project_dir or env.get("SUPALITE_PROJECT_DIR") or Path.cwd()).resolve()
    data_dir = Path(env.get("SUPALITE_DATA_DIR") or project / "supabase" / ".supalite").resolve()
    settings = Settings(
        project_dir=project, data_dir=data_dir, project_id=project.name or "supalite"
    )
    sources: list[str] = []

    toml_path = project / "supabase" / "config.toml"
    if toml_path.exists():
        settings = _apply(settings, _read_file_values(toml_path, "toml", env))
        _check_template_files(settings, toml_path)
        _check_objects_paths(settings, toml_path)
        sources.append(str(toml_path))
    if config_file is not None:
        path = Path(config_file).resolve()
        if not path.exists():
            raise ConfigError(f"{path}: config file not found")
        kind = "toml" if path.suffix == ".toml" else "json"
        settings = _apply(settings, _read_file_values(path, kind, env))
        _check_template_files(settings, path)
        _check_objects_paths(settings, path)
        sources.append(str(path))
    settings = _apply(settings, _env_values(env))
    if overrides:
        settings = _apply(settings, {k: v for k, v in overrides.items() if v is not None})
    return replace(settings, sources=tuple(sources))
