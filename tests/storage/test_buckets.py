"""Buckets over HTTP: create/get/list/update/empty/delete, the configured buckets, limits and
names, and RLS on storage.buckets (no policy: only service_role may manage buckets).  On
servers of their own: a configured bucket's `objects_path` uploaded at start (both backends),
and `[storage] enabled = false`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from supalite.mcp.backend import Backend, BackendConfig
from supalite.mcp.safety import Confirmations
from supalite.mcp.tools import Options, ToolContext, ToolFailure
from supalite.mcp.tools.storage import TOOLS
from supalite.storage.sniff import cli_content_type
from tests.auth.conftest import AuthServer, start_server
from tests.helpers import LiveServer
from tests.storage.conftest import (
    BACKENDS,
    STORAGE_TOML,
    StorageServer,
    Who,
    s3_storage_toml,
    storage_error,
    with_storage,
)


def test_configured_bucket_exists_with_its_settings(storage: StorageServer) -> None:
    r = storage.call("service", "GET", "/bucket/configured")
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["id"] == b["name"] == "configured"
    assert b["public"] is True
    assert b["file_size_limit"] == 1024 * 1024
    assert b["allowed_mime_types"] == ["image/*", "text/plain"]
    assert set(b) >= {"owner", "owner_id", "type", "created_at", "updated_at"}


def test_bucket_lifecycle(storage: StorageServer) -> None:
    r = storage.call(
        "service", "POST", "/bucket",
        json={"name": "photos", "public": False, "file_size_limit": "2MB",
              "allowed_mime_types": ["image/png"]},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "photos"}
    got = storage.call("service", "GET", "/bucket/photos").json()
    assert got["file_size_limit"] == 2_000_000 and got["allowed_mime_types"] == ["image/png"]

    names = [b["name"] for b in storage.call("service", "GET", "/bucket").json()]
    assert "photos" in names and "configured" in names
    page = storage.call("service", "GET", "/bucket", params={"search": "phot"}).json()
    assert [b["name"] for b in page] == ["photos"]
    desc = storage.call(
        "service", "GET", "/bucket", params={"sortColumn": "name", "sortOrder": "desc"}
    ).json()
    assert [b["name"] for b in desc] == sorted((b["name"] for b in desc), reverse=True)
    limited = storage.call("service", "GET", "/bucket", params={"limit": 1, "offset": 1}).json()
    assert len(limited) == 1

    r = storage.call(
        "service", "PUT", "/bucket/photos",
        json={"public": True, "file_size_limit": None, "allowed_mime_types": ["image/*"]},
    )  # fmt: skip
    assert r.json() == {"message": "Successfully updated"}
    got = storage.call("service", "GET", "/bucket/photos").json()
    assert got["public"] is True and got["file_size_limit"] is None
    assert got["allowed_mime_types"] == ["image/*"]

    assert storage.upload("service", "photos", "a.png", b"x", "image/png").status_code == 200
    r = storage.call("service", "DELETE", "/bucket/photos")
    storage_error(r, "409", "ResourceNotEmpty")
    r = storage.call("service", "POST", "/bucket/photos/empty")
    assert r.status_code == 200, r.text
    assert storage.rows("photos") == []
    r = storage.call("service", "DELETE", "/bucket/photos")
    assert r.json() == {"message": "Successfully deleted"}
    body = storage_error(storage.call("service", "GET", "/bucket/photos"), "404", "NoSuchBucket")
    assert body["message"] == "Bucket not found"


def test_duplicate_and_missing_buckets(storage: StorageServer) -> None:
    assert storage.call("service", "POST", "/bucket", json={"name": "dup"}).status_code == 200
    body = storage_error(storage.call("service", "POST", "/bucket", json={"name": "dup"}), "409")
    assert body["message"] == "The resource already exists" and body["error"] == "Duplicate"
    storage_error(storage.call("service", "PUT", "/bucket/nope", json={"public": True}), "404")
    storage_error(storage.call("service", "DELETE", "/bucket/nope"), "404", "NoSuchBucket")
    storage_error(storage.call("service", "POST", "/bucket/nope/empty"), "404", "NoSuchBucket")


@pytest.mark.parametrize("name", ["", "a/b", "x" * 101, "..", "tab\there", "é"])
def test_invalid_bucket_names(storage: StorageServer, name: str) -> None:
    r = storage.call("service", "POST", "/bucket", json={"name": name})
    body = storage_error(r, "400", "InvalidBucketName")
    assert body["message"] == "Bucket name invalid"


def test_bad_bucket_bodies(storage: StorageServer) -> None:
    storage_error(storage.call("service", "POST", "/bucket", json={}), "400")
    storage_error(storage.call("service", "POST", "/bucket", content=b"{nope"), "400")
    r = storage.call("service", "POST", "/bucket", json={"name": "b1", "file_size_limit": "lots"})
    storage_error(r, "400", "InvalidRequest")
    # Over the global limit (5 MiB here): refused, as Supabase refuses it.
    r = storage.call("service", "POST", "/bucket", json={"name": "b2", "file_size_limit": "1GB"})
    storage_error(r, "413", "EntityTooLarge")
    assert storage.auth.sql("select id from storage.buckets where id in ('b1', 'b2')") == []


def test_rls_on_buckets_without_policies(storage: StorageServer) -> None:
    for who in ("anon", "alice"):
        r = storage.call(who, "POST", "/bucket", json={"name": f"by-{who}"})
        body = storage_error(r, "403", "AccessDenied")
        assert body["message"] == "new row violates row-level security policy"
        assert storage.call(who, "GET", "/bucket").json() == []
        storage_error(storage.call(who, "GET", "/bucket/configured"), "404", "NoSuchBucket")
        storage_error(storage.call(who, "DELETE", "/bucket/configured"), "404")
    assert storage.call("service", "GET", "/bucket/configured").status_code == 200


def test_bucket_policy_lets_users_create_their_own(storage: StorageServer) -> None:
    storage.auth.script(
        """
        create policy "users create buckets" on storage.buckets for insert to authenticated
          with check (owner_id = auth.uid()::text);
        create policy "users see their buckets" on storage.buckets for select to authenticated
          using (owner_id = auth.uid()::text);
        """
    )
    r = storage.call("alice", "POST", "/bucket", json={"name": "alices"})
    assert r.status_code == 200, r.text
    mine = storage.call("alice", "GET", "/bucket").json()
    assert [b["name"] for b in mine] == ["alices"]
    assert mine[0]["owner_id"] == storage["alice"].uid == mine[0]["owner"]
    assert storage.call("bob", "GET", "/bucket").json() == []
    storage_error(storage.call("bob", "GET", "/bucket/alices"), "404")


def test_no_token_is_access_denied(storage: StorageServer) -> None:
    body = storage_error(storage.call(None, "GET", "/bucket"), "403", "AccessDenied")
    assert body["error"] == "Unauthorized"
    r = storage.call(None, "GET", "/bucket", headers={"Authorization": "Bearer not.a.jwt"})
    storage_error(r, "403", "AccessDenied")


def test_new_format_keys(storage: StorageServer) -> None:
    """`sb_secret_…` / `sb_publishable_…` stand for service_role / anon, as Kong maps them."""
    secret = storage.server.info["Secret key"]
    publishable = storage.server.info["Publishable key"]
    r = storage.call(None, "GET", "/bucket/configured", headers={"apikey": secret})
    assert r.status_code == 200, r.text
    r = storage.call(None, "GET", "/bucket", headers={"apikey": publishable})
    assert r.status_code == 200 and r.json() == []


# ------------------------------------------------------------------ objects_path, at start

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
# The files of the seed folder, and the type the Supabase CLI uploads each with (Go's sniffing,
# then the extension for what sniffs as text/plain).
SEED = {
    "logo.png": (PNG, "image/png"),
    "docs/readme.txt": (b"hello\n", "text/plain; charset=utf-8"),
    "docs/data.json": (b'{"a": 1}\n', "application/json"),
    "docs/deep/page.html": (b"<!DOCTYPE html><p>hi</p>", "text/html; charset=utf-8"),
    "icon.svg": (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml"),
    "raw": (bytes(range(256)), "application/octet-stream"),
}
SEED_TOML = """
[storage.buckets.seeded]
public = true
objects_path = "./seed"

[storage.buckets.single]
objects_path = "./seed/logo.png"
"""


@pytest.mark.parametrize(
    ("head", "name", "expected"),
    [  # Go's answers (net/http's sniff_test.go, mime.TypeByExtension)
        (b"\n <!DOCTYPE html>\n<html>", "x.txt", "text/html; charset=utf-8"),
        (b"<HTML>", "x", "text/html; charset=utf-8"),
        (b"<htmlx", "x", "text/plain; charset=utf-8"),
        (b" \t<?xml version=", "feed.svg", "text/xml; charset=utf-8"),
        (b"\xfe\xff\x00\x41", "utf16", "text/plain; charset=utf-16be"),
        (b"\x00\x00\x01\x00\x01", "favicon.ico", "image/x-icon"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "a.bin", "image/webp"),
        (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom", "v", "video/mp4"),
        (b"wOF2\x00\x01", "f.woff2", "font/woff2"),
        (b"\x00asm\x01\x00\x00\x00", "m.wasm", "application/wasm"),
        (b"\x1f\x8b\x08\x00", "a.json", "application/x-gzip"),
        (b"PK\x03\x04", "doc.docx", "application/zip"),
        (b"text\x01", "a.txt", "application/octet-stream"),
        (b"", "empty.JSON", "application/json"),
        (b"x = 1", "app.mjs", "text/javascript; charset=utf-8"),
        (b"plain", ".env", "text/plain; charset=utf-8"),
    ],
)
def test_cli_content_types(head: bytes, name: str, expected: str) -> None:
    assert cli_content_type(head, name) == expected


def seed_project(root: Path, storage_toml: str, files: dict[str, bytes]) -> Callable[[str], str]:
    """The config edit that writes `files` under supabase/seed/ and sets `storage_toml`."""

    def edit(text: str) -> str:
        folder = root / "supabase" / "seed"
        for name, data in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
        return with_storage(text, storage_toml)

    return edit


@pytest.fixture(scope="module", params=BACKENDS)
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StorageServer]:
    root = tmp_path_factory.mktemp("seeded")
    if request.param == "s3":
        moto = request.getfixturevalue("moto_s3")
        bucket = moto.new_bucket()
        toml = s3_storage_toml(moto, bucket)
    else:
        toml = STORAGE_TOML
    # A link in the folder is not followed, as Go's WalkDir does not follow it.
    (root / "outside").mkdir()
    (root / "outside" / "secret.txt").write_text("not seeded")
    files = {k: v[0] for k, v in SEED.items()}
    write_seed = seed_project(root, toml + SEED_TOML, files)

    def edit(text: str) -> str:
        text = write_seed(text)
        (root / "supabase" / "seed" / "link.txt").symlink_to(root / "outside" / "secret.txt")
        return text

    server = start_server(root, edit)
    s = StorageServer(AuthServer(server, server.client()), backend=request.param)
    if request.param == "s3":
        s.s3, s.s3_bucket = moto, bucket
    s.callers["service"] = Who("service", server.service_key)
    yield s
    s.http.close()
    s.server.stop()


def versions(s: StorageServer, bucket: str) -> dict[str, str]:
    rows = s.auth.sql("select name, version from storage.objects where bucket_id = $1", bucket)
    return {r["name"]: r["version"] for r in rows}


def restart(s: StorageServer) -> None:
    s.server.stop()
    s.auth.server = LiveServer(s.server.project).start()


def test_objects_path_is_uploaded_at_start(seeded: StorageServer) -> None:
    """As `supabase seed buckets` uploads it: every regular file under the folder (relative to
    supabase/), named by its path in it, with the CLI's content type and cache control, through
    the plain upload path (the bytes on the configured backend); a path naming one file
    uploads that file under its name."""
    s = seeded
    assert s.rows("seeded") == sorted(SEED)
    for name, (data, mimetype) in SEED.items():
        info = s.call("service", "GET", f"/object/info/seeded/{name}").json()
        assert (info["content_type"], info["cache_control"]) == (mimetype, "max-age=3600"), name
        assert info["size"] == len(data)
        r = s.http.get(f"/storage/v1/object/public/seeded/{name}")
        assert r.status_code == 200 and r.content == data, name
    assert s.rows("single") == ["logo.png"]
    assert s.download("service", "single", "logo.png").content == PNG
    owners = s.auth.sql("select distinct owner_id from storage.objects")
    assert [r["owner_id"] for r in owners] == [None]  # the service role's
    if s.backend == "s3":
        assert len(s.blob_files()) == len(SEED) + 1


def test_objects_path_restarts_write_only_what_changed(seeded: StorageServer) -> None:
    """A restart leaves objects that already hold their file's bytes alone (same version),
    writes a changed file over its object, uploads new files and ones removed meanwhile."""
    s = seeded
    before = versions(s, "seeded")
    restart(s)
    assert versions(s, "seeded") == before
    folder = s.server.project / "supabase" / "seed"
    (folder / "docs" / "readme.txt").write_bytes(b"changed\n")
    (folder / "docs" / "new.css").write_bytes(b"body { color: red }")
    assert s.call("service", "DELETE", "/object/seeded/raw").status_code == 200
    restart(s)
    after = versions(s, "seeded")
    assert set(after) == set(before) | {"docs/new.css"}
    assert after["docs/readme.txt"] != before["docs/readme.txt"]
    assert after["logo.png"] == before["logo.png"] and after["icon.svg"] == before["icon.svg"]
    assert s.download("service", "seeded", "docs/readme.txt").content == b"changed\n"
    assert s.download("service", "seeded", "raw").content == SEED["raw"][0]
    info = s.call("service", "GET", "/object/info/seeded/docs/new.css").json()
    assert info["content_type"] == "text/css; charset=utf-8"
    if s.backend == "s3":  # the replaced version's bytes are gone
        assert len(s.blob_files()) == len(SEED) + 2


def test_objects_path_refused_by_the_bucket_stops_the_start(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The bucket's limits apply as to any upload; a file they refuse stops the start with the
    file named, before anything of the folder is uploaded."""
    strict = (
        STORAGE_TOML
        + """
[storage.buckets.strict]
file_size_limit = "100B"
allowed_mime_types = ["image/*"]
objects_path = "./seed"
"""
    )
    for files, message in (
        ({"a.png": PNG, "b.txt": b"text"}, "strict/b.txt: mime type text/plain; charset=utf-8 is "
         "not supported (InvalidMimeType)"),
        ({"a.png": PNG, "big.png": PNG * 2}, "strict/big.png: The object exceeded the maximum "
         "allowed size (EntityTooLarge)"),
    ):  # fmt: skip
        root = tmp_path_factory.mktemp("strict")
        with pytest.raises(RuntimeError, match="supalite exited") as e:
            start_server(root, seed_project(root, strict, files))
        assert "storage.buckets.strict.objects_path: cannot upload" in str(e.value)
        assert message in str(e.value)
        blobs = root / "supabase" / ".supalite" / "storage" / "blobs"
        assert not blobs.exists() or not any(p.is_file() for p in blobs.rglob("*"))


# ------------------------------------------------------------------ [storage] enabled = false


@pytest.fixture(scope="module")
def disabled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    toml = STORAGE_TOML.replace("enabled = true", "enabled = false")
    server = start_server(tmp_path_factory.mktemp("off"), lambda text: with_storage(text, toml))
    a = AuthServer(server, server.client())
    yield a
    a.http.close()
    server.stop()


def test_disabled_storage_answers_as_kong_without_storage(disabled: AuthServer) -> None:
    """The Supabase CLI runs no Storage then, and its Kong still routes /storage/v1/ to the
    absent container: 503 `name resolution failed`, whatever the path, method or key."""
    key = {"apikey": disabled.service, "Authorization": f"Bearer {disabled.service}"}
    for method, path in (("GET", "/bucket"), ("POST", "/object/configured/a.txt"),
                         ("GET", "/object/public/configured/a.txt"), ("GET", "/config"),
                         ("POST", "/upload/resumable"), ("GET", "/status")):  # fmt: skip
        for headers in (key, {}):
            r = disabled.http.request(method, "/storage/v1" + path, headers=headers)
            assert r.status_code == 503, (method, path, r.text)
            assert r.json() == {"message": "name resolution failed"}
    # Nothing of Storage ran: no configured bucket, no data folder, no sweeper.
    assert disabled.sql("select id from storage.buckets") == []
    assert not (disabled.server.project / "supabase" / ".supalite" / "storage").exists()
    # The rest of the API is there.
    assert disabled.http.get("/auth/v1/health", headers=key).status_code == 200


def test_disabled_storage_in_the_mcp_tools(disabled: AuthServer) -> None:
    """Every storage tool says Storage is disabled, instead of a bare 503."""
    config = BackendConfig(url=disabled.url, service_key=disabled.service)
    args = {"list_buckets": {}, "create_bucket": {"name": "b"}, "get_storage_config": {},
            "list_objects": {"bucket": "b"}, "upload": {"bucket": "b", "path": "a.txt",
            "content": "x"}, "download": {"bucket": "b", "path": "a.txt"},
            "create_signed_url": {"bucket": "b", "path": "a.txt", "expires_in": 60},
            "move": {"bucket": "b", "from_path": "a", "to_path": "c"},
            "remove": {"bucket": "b", "paths": ["a.txt"]}}  # fmt: skip

    async def run() -> dict[str, ToolFailure | object]:
        backend = Backend(config)
        try:
            out: dict[str, ToolFailure | object] = {}
            for tool in TOOLS:
                ctx = ToolContext(backend, Options(), Confirmations())
                out[tool.name] = await tool.handler(ctx, args[tool.name])
            return out
        finally:
            await backend.aclose()

    results = asyncio.run(run())
    assert set(results) == set(args)
    for name, got in results.items():
        assert isinstance(got, ToolFailure) and got.code == "storage_disabled", (name, got)
        assert "enabled = false" in got.message
