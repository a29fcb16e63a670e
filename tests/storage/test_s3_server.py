"""supalite on the S3 backend as configured by a user: the `[storage.s3]` table and Supabase's
self-hosted env names, object bytes in the bucket (none in the data folder), and the secret
key nowhere in what supalite prints (`supalite status`, its log, its errors)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from supalite.config import ConfigError, load_settings
from tests.auth.conftest import (
    AuthServer,
    auth_server_factory,  # noqa: F401
)
from tests.helpers import supalite
from tests.storage.conftest import S3_PREFIX, StorageServer, make_storage_server, storage_error
from tests.storage.s3server import SECRET_KEY, MotoS3, moto_s3  # noqa: F401


@pytest.fixture(scope="module")
def s3s(
    auth_server_factory: Callable[..., AuthServer],  # noqa: F811
    moto_s3: MotoS3,  # noqa: F811
) -> Iterator[StorageServer]:
    s = make_storage_server(auth_server_factory, "s3", moto_s3)
    yield s
    s.server.stop()


def test_bytes_live_in_the_bucket_under_the_prefix(s3s: StorageServer) -> None:
    s = s3s
    assert s.call("service", "POST", "/bucket", json={"name": "b"}).status_code == 200
    assert s.upload("service", "b", "dir/a.txt", b"in the bucket").status_code == 200
    version = s.auth.sql("select version from storage.objects where name = 'dir/a.txt'")[0][
        "version"
    ]
    assert s.blob_files() == [S3_PREFIX + version]
    assert s.s3 is not None
    got = s.s3.client().get_object(Bucket=s.s3_bucket, Key=S3_PREFIX + version)
    assert got["Body"].read() == b"in the bucket"
    data = s.server.project / "supabase" / ".supalite" / "storage"
    assert not data.exists() or [p for p in data.rglob("*") if p.is_file()] == []
    # Read back through the API, whole and by range.
    assert s.download("service", "b", "dir/a.txt").content == b"in the bucket"
    r = s.download("service", "b", "dir/a.txt", headers={"range": "bytes=3-5"})
    assert r.status_code == 206 and r.content == b"the"


def test_bytes_gone_from_the_bucket_are_asset_missing(s3s: StorageServer) -> None:
    s = s3s
    assert s.call("service", "POST", "/bucket", json={"name": "gone"}).status_code == 200
    assert s.upload("service", "gone", "x.txt", b"x").status_code == 200
    version = s.auth.sql("select version from storage.objects where name = 'x.txt'")[0]["version"]
    assert s.s3 is not None
    s.s3.client().delete_object(Bucket=s.s3_bucket, Key=S3_PREFIX + version)
    storage_error(s.download("service", "gone", "x.txt"), "404", "NoSuchKey")


def test_secret_never_printed(s3s: StorageServer) -> None:
    s = s3s
    st = supalite("status", cwd=s.server.project)
    assert st.returncode == 0, st.stderr
    for fmt in ("env", "json"):
        out = supalite("status", "-o", fmt, cwd=s.server.project)
        assert SECRET_KEY not in out.stdout + out.stderr
    assert SECRET_KEY not in st.stdout + st.stderr
    settings = load_settings(s.server.project, env={})
    assert settings.storage.s3_secret_access_key == SECRET_KEY  # it is configured...
    assert SECRET_KEY not in repr(settings)  # ...and hidden from any repr of the settings
    assert SECRET_KEY not in "".join(s.server.output)


def test_env_names_of_supabase_self_hosted_storage(tmp_path: Path) -> None:
    env = {
        "STORAGE_BACKEND": "s3",
        "GLOBAL_S3_BUCKET": "my-bucket",
        "GLOBAL_S3_ENDPOINT": "http://minio:9000",
        "GLOBAL_S3_FORCE_PATH_STYLE": "true",
        "REGION": "eu-south",
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "env-secret",
    }
    st = load_settings(tmp_path, env=env).storage
    assert (st.backend, st.s3_bucket, st.s3_endpoint, st.s3_region) == (
        "s3", "my-bucket", "http://minio:9000", "eu-south",
    )  # fmt: skip
    assert st.s3_force_path_style is True
    assert (st.s3_access_key_id, st.s3_secret_access_key) == ("AKIAEXAMPLE", "env-secret")
    assert load_settings(tmp_path, env={}).storage.backend == "file"  # the default
    assert load_settings(tmp_path, env={"STORAGE_BACKEND": "disk"}).storage.backend == "file"
    with pytest.raises(ConfigError, match="STORAGE_BACKEND"):
        load_settings(tmp_path, env={"STORAGE_BACKEND": "ftp"})


def test_toml_table_with_env_refs(tmp_path: Path) -> None:
    (tmp_path / "supabase").mkdir()
    (tmp_path / "supabase" / "config.toml").write_text(
        '[storage]\nbackend = "s3"\n\n[storage.s3]\nbucket = "b"\n'
        'endpoint = "env(S3_ENDPOINT)"\nregion = "us-east-1"\nforce_path_style = true\n'
        'access_key_id = "env(S3_KEY)"\nsecret_access_key = "env(S3_SECRET)"\nprefix = "p"\n'
    )
    st = load_settings(tmp_path, env={"S3_KEY": "k", "S3_SECRET": "sec"}).storage
    # An unset env() is "": no endpoint (AWS itself), not an error.
    assert (st.s3_bucket, st.s3_endpoint, st.s3_prefix) == ("b", None, "p")
    assert (st.s3_access_key_id, st.s3_secret_access_key) == ("k", "sec")
    (tmp_path / "supabase" / "config.toml").write_text('[storage.s3]\nbucket = "b"\nzone = 1\n')
    with pytest.raises(ConfigError, match=r"storage\.s3\.zone"):
        load_settings(tmp_path, env={})
