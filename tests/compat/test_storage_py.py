"""Storage through supabase-py (storage3), against a live server, as an app uses it.

Callers: service_role (the service key), anon (the anon key) and two users signed in with
passwords through the same client (alice and bob), with the folder policy from Supabase's docs
on the private bucket.  Every storage3 call an app makes is here: buckets, upload/update/
upsert, download, info/exists, list/list_v2, move/copy, remove, public URLs, signed URLs (one
and many), signed upload URLs; and the errors the client raises for what RLS refuses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from storage3.exceptions import StorageApiError
from supabase import Client, ClientOptions, create_client

from tests.auth.conftest import (
    AuthServer,
    auth_server_factory,  # noqa: F401
)
from tests.storage.conftest import (
    BACKENDS,
    FOLDER_POLICY,
    StorageServer,
    backend_server,
    moto_s3,  # noqa: F401  (the S3 server, for the s3 run)
)


@pytest.fixture(scope="module", params=BACKENDS)
def s(
    request: pytest.FixtureRequest,
    auth_server_factory: Callable[..., AuthServer],  # noqa: F811
) -> Iterator[StorageServer]:
    server = backend_server(request, auth_server_factory)
    server.auth.script(FOLDER_POLICY)
    yield server
    server.server.stop()  # now, not at the module's end: the other backend's server starts next


def _client(s: StorageServer, key: str) -> Client:
    return create_client(
        s.url, key, options=ClientOptions(auto_refresh_token=False, persist_session=False)
    )


@pytest.fixture(scope="module")
def service(s: StorageServer) -> Client:
    return _client(s, s.server.service_key)


@pytest.fixture(scope="module")
def anon(s: StorageServer) -> Client:
    return _client(s, s.server.anon_key)


def _user(s: StorageServer, name: str) -> Client:
    c = _client(s, s.server.anon_key)
    c.auth.sign_in_with_password({"email": f"{name}@example.com", "password": "secret-pw-1"})
    return c


@pytest.fixture(scope="module")
def alice(s: StorageServer) -> Client:
    return _user(s, "alice")


@pytest.fixture(scope="module")
def bob(s: StorageServer) -> Client:
    return _user(s, "bob")


def _err(fn: Callable[[], Any]) -> StorageApiError:
    with pytest.raises(StorageApiError) as info:
        fn()
    return info.value


def test_buckets(service: Client, anon: Client, alice: Client) -> None:
    service.storage.create_bucket("private")
    service.storage.create_bucket("public-py", options={"public": True})
    service.storage.create_bucket(
        "limited", options={"file_size_limit": 1000, "allowed_mime_types": ["image/*"]}
    )
    names = {b.name for b in service.storage.list_buckets()}
    assert {"private", "public-py", "limited", "configured"} <= names
    b = service.storage.get_bucket("limited")
    assert b.file_size_limit == 1000 and b.allowed_mime_types == ["image/*"] and not b.public
    service.storage.update_bucket("limited", {"public": True, "file_size_limit": 2000})
    assert service.storage.get_bucket("limited").file_size_limit == 2000
    e = _err(lambda: service.storage.create_bucket("private"))
    assert e.message == "The resource already exists" and str(e.status) == "409"
    # No policy on storage.buckets: users and anon see nothing and create nothing.
    assert anon.storage.list_buckets() == []
    assert alice.storage.list_buckets() == []
    e = _err(lambda: alice.storage.create_bucket("mine"))
    assert str(e.status) == "403" and "row-level security" in e.message
    e = _err(lambda: service.storage.get_bucket("nope"))
    assert str(e.status) == "404" and e.message == "Bucket not found"
    service.storage.from_("limited").upload("a.png", b"x", {"content-type": "image/png"})
    assert service.storage.empty_bucket("limited")["message"]
    assert service.storage.delete_bucket("limited") == {"message": "Successfully deleted"}


def test_user_files(s: StorageServer, alice: Client, bob: Client, anon: Client) -> None:
    uid = s["alice"].uid
    files = alice.storage.from_("private")
    r = files.upload(f"{uid}/notes/a.txt", b"hello from alice",
                     {"content-type": "text/plain", "metadata": {"tag": "a"}})  # fmt: skip
    assert r.path == f"{uid}/notes/a.txt" and r.full_path == f"private/{uid}/notes/a.txt"
    assert files.download(f"{uid}/notes/a.txt") == b"hello from alice"
    info = files.info(f"{uid}/notes/a.txt")
    assert info["size"] == 16 and info["content_type"] == "text/plain"
    assert info["metadata"] == {"tag": "a"} and info["cache_control"] == "max-age=3600"
    assert files.exists(f"{uid}/notes/a.txt") is True
    assert files.exists(f"{uid}/notes/missing.txt") is False
    files.upload(f"{uid}/notes/b.txt", b"b", {"content-type": "text/plain"})
    files.upload(f"{uid}/notes/sub/c.txt", b"c", {"content-type": "text/plain"})
    listing = files.list(f"{uid}/notes")
    assert [(e["name"], e["id"] is None) for e in listing] == [
        ("a.txt", False), ("b.txt", False), ("sub", True),
    ]  # fmt: skip
    assert [e["name"] for e in files.list(f"{uid}/notes", {"search": "b"})] == ["b.txt"]
    v2 = files.list_v2({"prefix": f"{uid}/notes/", "with_delimiter": True})
    assert [f.name for f in v2.folders] == [f"{uid}/notes/sub/"]
    assert [o.name for o in v2.objects] == [f"{uid}/notes/a.txt", f"{uid}/notes/b.txt"]

    # update (PUT) and upsert
    files.update(f"{uid}/notes/a.txt", b"v2", {"content-type": "text/plain"})
    assert files.download(f"{uid}/notes/a.txt") == b"v2"
    e = _err(lambda: files.upload(f"{uid}/notes/a.txt", b"v3"))
    assert str(e.status) == "409"
    files.upload(f"{uid}/notes/a.txt", b"v3", {"upsert": "true"})
    assert files.download(f"{uid}/notes/a.txt") == b"v3"

    # move / copy within her folder
    files.move(f"{uid}/notes/b.txt", f"{uid}/moved.txt")
    files.copy(f"{uid}/moved.txt", f"{uid}/copied.txt")
    assert files.download(f"{uid}/copied.txt") == b"b"
    assert not files.exists(f"{uid}/notes/b.txt")

    # bob: not allowed to read or write alice's folder
    theirs = bob.storage.from_("private")
    e = _err(lambda: theirs.download(f"{uid}/moved.txt"))
    assert str(e.status) == "404"
    assert theirs.list(uid) == []
    e = _err(lambda: theirs.upload(f"{uid}/evil.txt", b"x"))
    assert str(e.status) == "403" and "row-level security" in e.message
    assert theirs.remove([f"{uid}/moved.txt"]) == []
    e = _err(lambda: theirs.move(f"{uid}/moved.txt", f"{s['bob'].uid}/stolen.txt"))
    assert str(e.status) == "404"
    bob_path = f"{s['bob'].uid}/mine.txt"
    theirs.upload(bob_path, b"bob's")
    assert theirs.download(bob_path) == b"bob's"
    e = _err(lambda: files.download(bob_path))
    assert str(e.status) == "404"
    # anon: nothing
    e = _err(lambda: anon.storage.from_("private").upload(f"{uid}/anon.txt", b"x"))
    assert str(e.status) == "403"

    removed = files.remove([f"{uid}/moved.txt", f"{uid}/copied.txt"])
    assert sorted(o["name"] for o in removed) == [f"{uid}/copied.txt", f"{uid}/moved.txt"]


def test_signed_urls(s: StorageServer, alice: Client, bob: Client) -> None:
    uid = s["alice"].uid
    files = alice.storage.from_("private")
    files.upload(f"{uid}/s.txt", b"signed", {"content-type": "text/plain"})
    signed = files.create_signed_url(f"{uid}/s.txt", 60)
    got = httpx.get(signed["signedURL"])
    assert got.status_code == 200 and got.content == b"signed"
    signed = files.create_signed_url(f"{uid}/s.txt", 60, {"download": "dl.txt"})
    got = httpx.get(signed["signedURL"])
    assert "filename=dl.txt" in got.headers["content-disposition"]
    many = files.create_signed_urls([f"{uid}/s.txt", f"{uid}/none.txt"], 60)
    assert many[0]["error"] is None and httpx.get(many[0]["signedURL"]).content == b"signed"
    assert many[1]["signedURL"] is None and many[1]["error"]
    e = _err(lambda: bob.storage.from_("private").create_signed_url(f"{uid}/s.txt", 60))
    assert str(e.status) == "404"

    up = files.create_signed_upload_url(f"{uid}/via-signed.txt")
    assert up["token"] and up["path"] == f"{uid}/via-signed.txt"
    # Anyone holding the token can upload there (a client with no session at all).
    anon_files = _client(s, s.server.anon_key).storage.from_("private")
    r = anon_files.upload_to_signed_url(
        f"{uid}/via-signed.txt", up["token"], b"uploaded", {"content-type": "text/plain"}
    )
    assert r.full_path == f"private/{uid}/via-signed.txt"
    assert files.download(f"{uid}/via-signed.txt") == b"uploaded"
    e = _err(lambda: anon_files.upload_to_signed_url(f"{uid}/other.txt", up["token"], b"x"))
    assert e.code == "InvalidSignature"
    e = _err(lambda: bob.storage.from_("private").create_signed_upload_url(f"{uid}/x.txt"))
    assert str(e.status) == "403"


def test_public_bucket(service: Client, anon: Client) -> None:
    files = service.storage.from_("public-py")
    files.upload("img/logo.txt", b"logo", {"content-type": "text/plain"})
    url = anon.storage.from_("public-py").get_public_url("img/logo.txt")
    got = httpx.get(url)
    assert got.status_code == 200 and got.content == b"logo"
    got = httpx.get(
        anon.storage.from_("public-py").get_public_url("img/logo.txt", {"download": True})
    )
    assert got.headers["content-disposition"].startswith("attachment")
    private_url = anon.storage.from_("private").get_public_url("x.txt")
    assert httpx.get(private_url).json()["statusCode"] == "404"


def test_configured_bucket_limits(service: Client) -> None:
    files = service.storage.from_("configured")
    e = _err(lambda: files.upload("big.txt", b"x" * (2 * 1024 * 1024),
                                  {"content-type": "text/plain"}))  # fmt: skip
    assert str(e.status) == "413" and e.code == "Payload too large"
    e = _err(lambda: files.upload("a.pdf", b"%PDF", {"content-type": "application/pdf"}))
    assert str(e.status) == "415"
    files.upload("ok.png", b"png", {"content-type": "image/png"})
    assert files.download("ok.png") == b"png"


def test_transform(s: StorageServer, service: Client, alice: Client, bob: Client) -> None:
    """Image transformations through storage3's `transform` option: download (render under
    RLS), a public URL, and a signed URL whose options are fixed in its token."""
    import io

    from PIL import Image

    def size(data: bytes) -> tuple[int, int]:
        return Image.open(io.BytesIO(data)).size

    source = io.BytesIO()
    Image.new("RGB", (300, 150), (200, 30, 30)).save(source, "JPEG")
    uid = s["alice"].uid
    files = alice.storage.from_("private")
    files.upload(f"{uid}/pic.jpg", source.getvalue(), {"content-type": "image/jpeg"})
    data = files.download(f"{uid}/pic.jpg", {"transform": {"width": 100, "height": 100}})
    assert size(data) == (100, 100) and data[:2] == b"\xff\xd8"  # cover, still a JPEG
    theirs = bob.storage.from_("private")
    e = _err(lambda: theirs.download(f"{uid}/pic.jpg", {"transform": {"width": 10}}))
    assert str(e.status) == "404"
    e = _err(lambda: files.download(f"{uid}/pic.jpg", {"transform": {"quality": 101}}))
    assert e.message == "querystring/quality must be <= 100"

    service.storage.from_("public-py").upload(
        "img/pic.jpg", source.getvalue(), {"content-type": "image/jpeg"}
    )
    url = service.storage.from_("public-py").get_public_url(
        "img/pic.jpg", {"transform": {"width": 60, "height": 60, "resize": "contain"}}
    )
    assert "/render/image/public/public-py/img/pic.jpg?" in url
    got = httpx.get(url, headers={"accept": "image/webp"})
    assert got.headers["content-type"] == "image/webp" and size(got.content) == (60, 30)

    signed = files.create_signed_url(
        f"{uid}/pic.jpg", 60, {"transform": {"width": 40, "resize": "fill", "format": "origin"}}
    )
    assert "/render/image/sign/private/" in signed["signedURL"]
    got = httpx.get(signed["signedURL"], headers={"accept": "image/webp"})
    assert got.headers["content-type"] == "image/jpeg" and size(got.content) == (40, 20)
