"""What a running supalite needs beyond its Settings: the keys, the database URLs and, when
there is no DATABASE_URL, the embedded cluster.  Built the same way in the parent process and
in every worker, so workers need nothing from the parent but the settings' sources."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from supalite.config import Settings
from supalite.db.bootstrap import authenticator_password
from supalite.db.embedded import EmbeddedPostgres
from supalite.db.pool import with_credentials
from supalite.keys import ProjectKeys, load_or_create_secret, load_signing_jwks, project_keys


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    keys: ProjectKeys
    admin_url: str  # the database owner, for bootstrap, migrations and services' own tables
    api_db_url: str  # `authenticator`, for per-request work under the caller's role
    db_url: str  # what people and their tools connect to (printed as DB_URL)
    pg: EmbeddedPostgres | None

    @property
    def database_label(self) -> str:
        if self.pg is None:
            return "external (DATABASE_URL)"
        b = self.pg.binaries
        return f"embedded PostgreSQL {b.version} ({b.origin} binaries)"


def build_runtime(settings: Settings) -> Runtime:
    secret = settings.auth.jwt_secret or load_or_create_secret(settings.data_dir)
    jwks: tuple[Mapping[str, Any], ...] = ()
    if settings.auth.signing_keys_path:
        jwks = load_signing_jwks(settings.supabase_dir / settings.auth.signing_keys_path)
    keys = project_keys(
        secret,
        anon_key=settings.auth.anon_key,
        service_role_key=settings.auth.service_role_key,
        project_ref=settings.project_id,
        signing_jwks=jwks,
    )
    auth_pw = authenticator_password(secret)
    if settings.db.url is None:
        pg = EmbeddedPostgres(settings.data_dir, settings.db.port)
        return Runtime(
            settings,
            keys,
            admin_url=pg.local_url(),
            api_db_url=pg.local_url("authenticator", auth_pw),
            db_url=pg.tcp_url,
            pg=pg,
        )
    url = settings.db.url
    return Runtime(
        settings,
        keys,
        admin_url=url,
        api_db_url=with_credentials(url, "authenticator", auth_pw),
        db_url=url,
        pg=None,
    )
