"""Settings from the three sources, their precedence, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from supalite.config import ConfigError, load_settings


def write_toml(project: Path, text: str) -> Path:
    path = project / "supabase" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_are_supabase_cli_defaults(tmp_path: Path) -> None:
    s = load_settings(tmp_path, env={})
    assert s.api.port == 54321
    assert s.db.port == 54322
    assert s.api.schemas == ("public", "graphql_public")
    assert s.api.extra_search_path == ("public", "extensions")
    assert s.api.max_rows == 1000
    assert s.auth.jwt_expiry == 3600
    assert s.auth.site_url == "http://127.0.0.1:3000"
    assert s.auth.email_enable_confirmations is False
    assert s.storage.file_size_limit == 50 * 1024 * 1024
    assert s.db.url is None and s.embedded
    assert s.data_dir == tmp_path / "supabase" / ".supalite"
    assert s.project_id == tmp_path.name


def test_config_toml_values(tmp_path: Path) -> None:
    write_toml(
        tmp_path,
        """
project_id = "demo"
[api]
enabled = true
port = 6000
schemas = ["public", "api"]
max_rows = 50
[api.tls]
enabled = false
[db]
port = 6001
shadow_port = 54320
[db.pooler]
enabled = false
pool_mode = "transaction"
[studio]
port = 54323
[inbucket]
enabled = true
[storage]
file_size_limit = "5MB"
[storage.buckets.images]
public = true
file_size_limit = "1MiB"
allowed_mime_types = ["image/png"]
[auth]
site_url = "http://localhost:3000"
jwt_expiry = 600
[auth.email]
enable_confirmations = true
max_frequency = "2m"
[auth.rate_limit]
email_sent = 9
[auth.hook.custom_access_token]
enabled = true
uri = "pg-functions://postgres/public/my_hook"
[auth.external.github]
enabled = false
client_id = ""
[edge_runtime]
policy = "per_worker"
""",
    )
    s = load_settings(tmp_path, env={})
    assert s.project_id == "demo"
    assert (s.api.port, s.db.port, s.api.max_rows) == (6000, 6001, 50)
    assert s.api.schemas == ("public", "api")
    assert s.storage.file_size_limit == 5_000_000
    assert s.storage.buckets == {
        "images": {"public": True, "file_size_limit": 1024**2, "allowed_mime_types": ("image/png",)}
    }
    assert s.auth.site_url == "http://localhost:3000"
    assert s.auth.jwt_expiry == 600
    assert s.auth.email_enable_confirmations is True
    assert s.auth.email_max_frequency == 120.0
    assert s.auth.rate_limits["email_sent"] == 9
    assert s.auth.rate_limits["token_refresh"] == 150  # untouched default kept
    assert s.auth.custom_access_token_hook == "pg-functions://postgres/public/my_hook"


def test_env_refs_in_toml(tmp_path: Path) -> None:
    write_toml(
        tmp_path, '[auth.email.smtp]\nhost = "smtp.example.com"\npass = "env(MY_SMTP_PASS)"\n'
    )
    s = load_settings(tmp_path, env={"MY_SMTP_PASS": "hunter2"})
    assert s.auth.smtp_pass == "hunter2"
    assert s.auth.smtp_host == "smtp.example.com"


JSON_CONFIG = {
    "supabase": {
        "url": "https://api.example.com",
        "keys": {"anon": "anon-key", "serviceRole": "service-key"},
        "database": {
            "poolSize": 7,
            "idleTimeout": 15000,
            "connectionTimeout": 2500,
            "ssl": {"rejectUnauthorized": False},
        },
        "auth": {
            "providers": ["email", {"provider": "github", "clientId": "abc"}],
            "sessionConfig": {"expiresIn": 900, "refreshTokenRotation": False},
            "redirectUrls": {
                "login": "https://app.example.com/in",
                "logout": "https://app.example.com/out",
            },
        },
        "realtime": {"enabled": False, "params": {"eventsPerSecond": 25}},
        "storage": {
            "buckets": ["avatars", "documents", "media"],
            "maxFileSize": "50MB",
            "allowedMimeTypes": ["image/*", "application/pdf", "text/*"],
        },
    }
}


def test_json_config_maps_onto_settings(tmp_path: Path) -> None:
    path = tmp_path / "supalite.json"
    path.write_text(json.dumps(JSON_CONFIG))
    s = load_settings(tmp_path, config_file=path, env={})
    assert s.api.public_url == "https://api.example.com"
    assert s.api_url == "https://api.example.com"
    assert (s.auth.anon_key, s.auth.service_role_key) == ("anon-key", "service-key")
    assert s.db.pool_size == 7
    assert s.db.idle_timeout == 15.0
    assert s.db.connection_timeout == 2.5
    assert s.db.ssl_reject_unauthorized is False
    assert [p["provider"] for p in s.auth.providers] == ["email", "github"]
    assert s.auth.providers[1]["clientId"] == "abc"
    assert s.auth.jwt_expiry == 900
    assert s.auth.enable_refresh_token_rotation is False
    assert s.auth.login_redirect_url == "https://app.example.com/in"
    assert s.auth.logout_redirect_url == "https://app.example.com/out"
    assert s.realtime.enabled is False and s.realtime.events_per_second == 25
    assert list(s.storage.buckets) == ["avatars", "documents", "media"]
    assert s.storage.file_size_limit == 50_000_000
    assert s.storage.allowed_mime_types == ("image/*", "application/pdf", "text/*")
    assert s.sources == (str(path),)


def test_precedence_env_over_json_over_toml_over_defaults(tmp_path: Path) -> None:
    write_toml(tmp_path, "[api]\nport = 7000\nmax_rows = 10\n[auth]\njwt_expiry = 100\n")
    path = tmp_path / "c.json"
    path.write_text(
        json.dumps(
            {
                "supabase": {
                    "auth": {"sessionConfig": {"expiresIn": 200}},
                    "database": {"poolSize": 3},
                }
            }
        )
    )
    env = {"SUPALITE_PORT": "7100", "SUPALITE_DB_POOL_SIZE": "4"}
    s = load_settings(tmp_path, config_file=path, env=env)
    assert s.api.port == 7100  # env beats toml
    assert s.api.max_rows == 10  # toml beats default
    assert s.auth.jwt_expiry == 200  # json beats toml
    assert s.db.pool_size == 4  # env beats json
    s = load_settings(tmp_path, config_file=path, env=env, overrides={"api.port": 7200})
    assert s.api.port == 7200  # a command-line flag beats everything


def test_database_url_from_env(tmp_path: Path) -> None:
    s = load_settings(tmp_path, env={"DATABASE_URL": "postgresql://u:p@db:5432/app"})
    assert s.db.url == "postgresql://u:p@db:5432/app"
    assert not s.embedded


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[api]\nport = 99999\n", "bad value for 'api.port': must be between 1 and 65535"),
        ('[api]\nport = "abc"\n', "bad value for 'api.port': expected an integer"),
        ("[api]\nprot = 1\n", "unknown key 'api.prot'"),
        ("[nonsense]\nx = 1\n", "unknown key 'nonsense.x'"),
        ('[storage]\nfile_size_limit = "50XB"\n', "bad value for 'storage.file_size_limit'"),
        ('[auth]\nsite_url = "not a url"\n', "bad value for 'auth.site_url'"),
        ("[auth.rate_limit]\nbogus = 1\n", "unknown rate limit 'bogus'"),
        ('[auth.hook.custom_access_token]\nuri = "http://x"\n', "pg-functions://"),
        ("[api\nport = 1\n", "invalid TOML"),
        ("[auth.email]\nenable_confirmations = 3\n", "expected true or false"),
    ],
)
def test_bad_toml_names_key_and_file(tmp_path: Path, toml: str, message: str) -> None:
    path = write_toml(tmp_path, toml)
    with pytest.raises(ConfigError) as e:
        load_settings(tmp_path, env={})
    assert str(path) in str(e.value)
    assert message in str(e.value)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"supabase": {"urll": "x"}}, "unknown key 'supabase.urll'"),
        ({"supabase": {"database": {"poolSize": "many"}}}, "'supabase.database.poolSize'"),
        (
            {"supabase": {"database": {"ssl": {"reject": True}}}},
            "unknown key 'supabase.database.ssl.reject'",
        ),
        ({"supabase": {"storage": {"maxFileSize": "huge"}}}, "'supabase.storage.maxFileSize'"),
        ({"supabase": {"realtime": {"params": {"eventsPerSecond": 0}}}}, "eventsPerSecond"),
        ({"supabase": {"auth": {"providers": [{"clientId": "x"}]}}}, "needs a 'provider'"),
        ({"supabase": {"storage": {"buckets": "avatars"}}}, "'supabase.storage.buckets'"),
        ({"other": {}}, 'expected one top-level object {"supabase"'),
        ([1, 2], 'expected one top-level object {"supabase"'),
    ],
)
def test_bad_json_names_key_and_file(tmp_path: Path, doc: object, message: str) -> None:
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError) as e:
        load_settings(tmp_path, config_file=path, env={})
    assert str(path) in str(e.value)
    assert message in str(e.value)


def test_corrupt_json_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "cfg.json"
    path.write_text('{"supabase": {')
    with pytest.raises(ConfigError, match="invalid JSON"):
        load_settings(tmp_path, config_file=path, env={})
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path, config_file=tmp_path / "nope.json", env={})
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_settings(tmp_path, config_file=path, env={})


def test_bad_env_value_names_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SUPALITE_PORT: bad value"):
        load_settings(tmp_path, env={"SUPALITE_PORT": "eighty"})
    with pytest.raises(ConfigError, match="DATABASE_URL: bad value"):
        load_settings(tmp_path, env={"DATABASE_URL": "mysql://x"})


def test_image_transformation_settings(tmp_path: Path) -> None:
    """`[storage.image_transformation] enabled` as the CLI writes it, Storage's env names
    (IMAGE_TRANSFORMATION_ENABLED wins over ENABLE_IMAGE_TRANSFORMATION), and the limits under
    the names Supabase's Storage and its imgproxy read."""
    s = load_settings(tmp_path, env={}).storage
    assert s.image_transformation_enabled is True and s.image_max_size is None
    write_toml(tmp_path, "[storage.image_transformation]\nenabled = false\n")
    assert load_settings(tmp_path, env={}).storage.image_transformation_enabled is False
    env = {"ENABLE_IMAGE_TRANSFORMATION": "true"}
    assert load_settings(tmp_path, env=env).storage.image_transformation_enabled is True
    env["IMAGE_TRANSFORMATION_ENABLED"] = "false"
    assert load_settings(tmp_path, env=env).storage.image_transformation_enabled is False
    s = load_settings(tmp_path, env={
        "IMG_LIMITS_MIN_SIZE": "4", "IMAGE_TRANSFORMATION_LIMIT_MAX_SIZE": "2000",
        "IMGPROXY_MAX_SRC_RESOLUTION": "16.8", "IMGPROXY_MAX_SRC_FILE_SIZE": "25000000",
    }).storage  # fmt: skip
    assert (s.image_min_size, s.image_max_size) == (4, 2000)
    assert (s.image_max_source_pixels, s.image_max_source_bytes) == (16_800_000, 25_000_000)
    for name, value in (("IMGPROXY_MAX_SRC_RESOLUTION", "lots"),
                        ("IMGPROXY_MAX_SRC_RESOLUTION", "-1"),
                        ("IMAGE_TRANSFORMATION_LIMIT_MAX_SIZE", "0")):  # fmt: skip
        with pytest.raises(ConfigError, match=f"{name}: bad value"):
            load_settings(tmp_path, env={name: value})


def test_file_etag_algorithm(tmp_path: Path) -> None:
    """Storage's STORAGE_FILE_ETAG_ALGORITHM: `md5` by default, as Supabase's; `mtime`."""
    assert load_settings(tmp_path, env={}).storage.file_etag_algorithm == "md5"
    env = {"STORAGE_FILE_ETAG_ALGORITHM": "MTIME"}
    assert load_settings(tmp_path, env=env).storage.file_etag_algorithm == "mtime"
    with pytest.raises(ConfigError, match="STORAGE_FILE_ETAG_ALGORITHM: bad value"):
        load_settings(tmp_path, env={"STORAGE_FILE_ETAG_ALGORITHM": "sha1"})


def test_bucket_objects_path(tmp_path: Path) -> None:
    """`objects_path` as the CLI resolves it: relative to the supabase/ folder; a path that
    names nothing is refused when the config is read (unless Storage is off: then nothing is
    uploaded)."""
    bucket = '[storage.buckets.images]\nobjects_path = "./images"\n'
    write_toml(tmp_path, bucket)
    with pytest.raises(
        ConfigError, match=r"'storage.buckets.images.objects_path'.*supabase/images"
    ):
        load_settings(tmp_path, env={})
    (tmp_path / "images").mkdir()  # the project's folder is not where the CLI looks
    with pytest.raises(ConfigError, match="no file or folder at"):
        load_settings(tmp_path, env={})
    (tmp_path / "supabase" / "images").mkdir()
    s = load_settings(tmp_path, env={})
    assert s.storage.buckets == {"images": {"objects_path": "./images"}}
    write_toml(tmp_path, "[storage]\nenabled = false\n" + bucket.replace('images"', 'gone"'))
    assert load_settings(tmp_path, env={}).storage.enabled is False
