"""A live supalite for the Storage tests, its callers, and a small client for /storage/v1.

One server per test module (a fresh project, so a fresh database and data folder), started
with a `[storage]` section as the Supabase CLI writes it: a global limit of 5 MiB and one
configured bucket.  The `storage` fixture runs each module twice: on the disk backend and on
the S3 backend (a fresh bucket of the session's moto server); `blob_files()` lists what the
backend holds either way, so "nothing left behind" is checked on both.

Callers: anon (the anon key), service_role (the service key) and two users
signed up through /auth/v1 (alice and bob), each with their own access token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.auth.conftest import (
    AuthServer,
    auth_server_factory,  # noqa: F401  (the server factory)
)
from tests.helpers import LiveServer
from tests.storage.s3server import ACCESS_KEY, REGION, SECRET_KEY, MotoS3, moto_s3  # noqa: F401

BACKENDS = ("disk", "s3")
S3_PREFIX = "supalite-blobs/"

STORAGE_TOML = """
[storage]
enabled = true
file_size_limit = "5MiB"

[storage.buckets.configured]
public = true
file_size_limit = "1MiB"
allowed_mime_types = ["image/*", "text/plain"]
"""

# The policy from Supabase's docs: a user may read and write only under a folder named by
# their auth.uid(), in the `private` bucket.
FOLDER_POLICY = """
create policy "own folder read" on storage.objects for select to authenticated
  using (bucket_id = 'private' and (storage.foldername(name))[1] = auth.uid()::text);
create policy "own folder insert" on storage.objects for insert to authenticated
  with check (bucket_id = 'private' and (storage.foldername(name))[1] = auth.uid()::text);
create policy "own folder update" on storage.objects for update to authenticated
  using (bucket_id = 'private' and (storage.foldername(name))[1] = auth.uid()::text)
  with check (bucket_id = 'private' and (storage.foldername(name))[1] = auth.uid()::text);
create policy "own folder delete" on storage.objects for delete to authenticated
  using (bucket_id = 'private' and (storage.foldername(name))[1] = auth.uid()::text);
"""


def with_storage(text: str, storage_toml: str = STORAGE_TOML) -> str:
    head, sep, rest = text.partition("[storage]")
    if sep:  # replace the generated [storage] section (up to the next table) with ours
        _, _, tail = rest.partition("\n[")
        return head + storage_toml.lstrip() + "\n[" + tail
    return text + storage_toml


def s3_storage_toml(moto: MotoS3, bucket: str) -> str:
    """STORAGE_TOML with the S3 backend on, as a user would write it for MinIO and the like."""
    s3 = f"""backend = "s3"

[storage.s3]
bucket = "{bucket}"
endpoint = "{moto.endpoint}"
region = "{REGION}"
force_path_style = true
access_key_id = "{ACCESS_KEY}"
secret_access_key = "{SECRET_KEY}"
prefix = "{S3_PREFIX}"

[storage.buckets.configured]"""
    return STORAGE_TOML.replace("[storage.buckets.configured]", s3)


@dataclass
class Who:
    name: str
    key: str
    token: str | None = None
    uid: str | None = None

    def headers(self) -> dict[str, str]:
        return {"apikey": self.key, "Authorization": f"Bearer {self.token or self.key}"}


@dataclass
class StorageServer:
    auth: AuthServer
    callers: dict[str, Who] = field(default_factory=dict)
    backend: str = "disk"
    s3: MotoS3 | None = None
    s3_bucket: str = ""

    @property
    def http(self) -> httpx.Client:
        return self.auth.http

    @property
    def server(self) -> LiveServer:
        return self.auth.server

    @property
    def url(self) -> str:
        return self.auth.url

    def __getitem__(self, name: str) -> Who:
        return self.callers[name]

    def call(self, who: str | Who | None, method: str, path: str, **kw: Any) -> httpx.Response:
        headers: dict[str, str] = {}
        if who is not None:
            w = self.callers[who] if isinstance(who, str) else who
            headers.update(w.headers())
        headers.update(kw.pop("headers", {}) or {})
        return self.http.request(method, "/storage/v1" + path, headers=headers, **kw)

    def upload(
        self, who: str, bucket: str, path: str, data: bytes = b"hello",
        content_type: str = "text/plain", method: str = "POST", **headers: str,
    ) -> httpx.Response:  # fmt: skip
        h = {"content-type": content_type, **{k.replace("_", "-"): v for k, v in headers.items()}}
        return self.call(who, method, f"/object/{bucket}/{path}", content=data, headers=h)

    def download(self, who: str | None, bucket: str, path: str, **kw: Any) -> httpx.Response:
        return self.call(who, "GET", f"/object/authenticated/{bucket}/{path}", **kw)

    def rows(self, bucket: str) -> list[str]:
        return [
            r["name"]
            for r in self.auth.sql(
                "select name from storage.objects where bucket_id = $1 order by name", bucket
            )
        ]

    def blob_files(self) -> list[str]:
        """What the backend holds: files (blobs and temporary ones) on disk; objects and
        unfinished multipart uploads under supalite's prefix on S3."""
        if self.s3 is not None:
            return self.s3.everything(self.s3_bucket, S3_PREFIX)
        root = self.server.project / "supabase" / ".supalite" / "storage"
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def storage_error(r: httpx.Response, status: str, code: str | None = None) -> dict[str, Any]:
    """Supabase's error shape: HTTP 400 (500 for server errors), the real status in the body."""
    assert r.status_code == (500 if status == "500" else 400), (r.status_code, r.text)
    body: dict[str, Any] = r.json()
    assert body["statusCode"] == status, body
    assert set(body) >= {"statusCode", "error", "message"}, body
    if code is not None:
        assert body["code"] == code, body
    return body


def make_storage_server(
    factory: Callable[..., AuthServer], backend: str = "disk", s3: MotoS3 | None = None
) -> StorageServer:
    if backend == "s3":
        assert s3 is not None
        bucket = s3.new_bucket()
        auth = factory(lambda text: with_storage(text, s3_storage_toml(s3, bucket)))
        s = StorageServer(auth, backend="s3", s3=s3, s3_bucket=bucket)
    else:
        auth = factory(with_storage)
        s = StorageServer(auth)
    s.callers["anon"] = Who("anon", auth.anon)
    s.callers["service"] = Who("service", auth.service)
    for name in ("alice", "bob"):
        session = auth.sign_up(f"{name}@example.com")
        s.callers[name] = Who(name, auth.anon, session["access_token"], session["user"]["id"])
    return s


def backend_server(
    request: pytest.FixtureRequest, factory: Callable[..., AuthServer]
) -> StorageServer:
    """The server for a fixture parametrized over BACKENDS; moto starts only if needed."""
    backend: str = request.param
    s3 = request.getfixturevalue("moto_s3") if backend == "s3" else None
    return make_storage_server(factory, backend, s3)


@pytest.fixture(scope="module", params=BACKENDS)
def storage(
    request: pytest.FixtureRequest,
    auth_server_factory: Callable[..., AuthServer],  # noqa: F811
) -> Iterator[StorageServer]:
    s = backend_server(request, auth_server_factory)
    yield s
    s.server.stop()  # now, not at the module's end: the other backend's server starts next
