"""Signed URLs (one, many) and signed upload URLs: each token is good for its own path, its
own scope and its own lifetime; forged, expired or misdirected tokens get Supabase's errors."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from tests.storage.conftest import FOLDER_POLICY, StorageServer, storage_error


@pytest.fixture(scope="module")
def s(storage: StorageServer) -> StorageServer:
    assert storage.call("service", "POST", "/bucket", json={"name": "private"}).status_code == 200
    storage.auth.script(FOLDER_POLICY)
    return storage


def secret(s: StorageServer) -> str:
    return s.server.info["JWT secret"]


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


def test_signed_download(s: StorageServer) -> None:
    name = f"{s['alice'].uid}/signed.txt"
    assert s.upload("alice", "private", name, b"for your eyes").status_code == 200
    r = s.call("alice", "POST", f"/object/sign/private/{name}", json={"expiresIn": 60})
    assert r.status_code == 200, r.text
    url = r.json()["signedURL"]
    assert url.startswith(f"/object/sign/private/{name}?token=")
    claims = jwt.decode(token_of(url), secret(s), algorithms=["HS256"])
    assert claims["url"] == f"private/{name}" and claims["exp"] - claims["iat"] == 60
    # Anyone holding the URL may read, with no key at all.
    got = s.http.get("/storage/v1" + url)
    assert got.status_code == 200 and got.content == b"for your eyes"
    assert "expires" in got.headers
    got = s.http.get("/storage/v1" + url + "&download=x.txt")
    assert "filename=x.txt" in got.headers["content-disposition"]
    # storage3 sends expiresIn as a string.
    r = s.call("alice", "POST", f"/object/sign/private/{name}", json={"expiresIn": "30"})
    assert r.status_code == 200, r.text


def test_tokens_do_not_transfer(s: StorageServer) -> None:
    name = f"{s['alice'].uid}/t.txt"
    other = f"{s['alice'].uid}/other.txt"
    for n in (name, other):
        assert s.upload("alice", "private", n, b"x").status_code == 200
    token = token_of(
        s.call("alice", "POST", f"/object/sign/private/{name}", json={"expiresIn": 60}).json()[
            "signedURL"
        ]
    )
    # Another path with the same token.
    body = storage_error(
        s.http.get(f"/storage/v1/object/sign/private/{other}", params={"token": token}),
        "400", "InvalidSignature",
    )  # fmt: skip
    assert body["message"] == "Invalid signature"
    # Tampered, forged with another secret, expired, missing.
    forged = jwt.encode({"url": f"private/{other}", "exp": int(time.time()) + 60}, "nope" * 8)
    expired = jwt.encode(
        {"url": f"private/{name}", "scope": "download", "exp": int(time.time()) - 10,
         "iat": int(time.time()) - 70},
        secret(s),
    )  # fmt: skip
    cases = {
        token[:-2] + ("AA" if not token.endswith("AA") else "BB"): "signature verification failed",
        forged: "signature verification failed",
        expired: '"exp" claim timestamp check failed',
        "garbage": "Invalid Compact JWS",
    }
    for bad, message in cases.items():
        r = s.http.get(f"/storage/v1/object/sign/private/{name}", params={"token": bad})
        body = storage_error(r, "400", "InvalidJWT")
        assert body["message"] == message
    storage_error(s.http.get(f"/storage/v1/object/sign/private/{name}"), "400")
    # A user's own access token (same secret, no url) is not a signed URL.
    r = s.http.get(f"/storage/v1/object/sign/private/{name}", params={"token": s["alice"].token})
    storage_error(r, "400", "InvalidSignature")
    # A download token cannot be used to upload.
    r = s.http.put(f"/storage/v1/object/upload/sign/private/{name}", params={"token": token},
                   content=b"overwrite", headers={"content-type": "text/plain"})  # fmt: skip
    storage_error(r, "400", "InvalidSignature")
    assert s.download("alice", "private", name).content == b"x"


def test_sign_many(s: StorageServer) -> None:
    mine = [f"{s['alice'].uid}/m{i}.txt" for i in range(3)]
    for i, n in enumerate(mine):
        assert s.upload("alice", "private", n, str(i).encode()).status_code == 200
    theirs = f"{s['bob'].uid}/b.txt"
    assert s.upload("bob", "private", theirs, b"b").status_code == 200
    r = s.call("alice", "POST", "/object/sign/private",
               json={"expiresIn": 60, "paths": [*mine, theirs, "nope.txt"]})  # fmt: skip
    assert r.status_code == 200, r.text
    items = r.json()
    assert [i["path"] for i in items] == [*mine, theirs, "nope.txt"]
    for i, item in enumerate(items[:3]):
        assert item["error"] is None
        assert s.http.get("/storage/v1" + item["signedURL"]).content == str(i).encode()
    for item in items[3:]:
        assert item["signedURL"] is None
        assert item["error"] == "Either the object does not exist or you do not have access to it"
    storage_error(s.call("alice", "POST", "/object/sign/private", json={"expiresIn": 60}), "400")
    r = s.call("alice", "POST", "/object/sign/private", json={"expiresIn": 0, "paths": mine})
    storage_error(r, "400")


def test_signed_upload(s: StorageServer) -> None:
    name = f"{s['alice'].uid}/up.txt"
    r = s.call("alice", "POST", f"/object/upload/sign/private/{name}")
    assert r.status_code == 200, r.text
    url, token = r.json()["url"], r.json()["token"]
    assert url == f"/object/upload/sign/private/{name}?token={token}"
    claims = jwt.decode(token, secret(s), algorithms=["HS256"])
    assert claims["owner"] == s["alice"].uid and claims["upsert"] is False
    # Anyone with the token may upload, once, to that path only.
    put = s.http.put("/storage/v1" + url, content=b"via signed url",
                     headers={"content-type": "text/plain"})  # fmt: skip
    assert put.status_code == 200, put.text
    assert put.json()["Key"] == f"private/{name}"
    assert s.download("alice", "private", name).content == b"via signed url"
    row = s.auth.sql("select owner_id from storage.objects where name = $1", name)[0]
    assert row["owner_id"] == s["alice"].uid
    again = s.http.put(
        "/storage/v1" + url, content=b"again", headers={"content-type": "text/plain"}
    )
    storage_error(again, "409")
    other = f"{s['alice'].uid}/elsewhere.txt"
    r = s.http.put(f"/storage/v1/object/upload/sign/private/{other}", params={"token": token},
                   content=b"x", headers={"content-type": "text/plain"})  # fmt: skip
    storage_error(r, "400", "InvalidSignature")
    # An upload token does not download.
    r = s.http.get(f"/storage/v1/object/sign/private/{name}", params={"token": token})
    storage_error(r, "400", "InvalidSignature")
    # Multipart works too, and x-upsert at signing allows overwriting.
    r = s.call("alice", "POST", f"/object/upload/sign/private/{name}", headers={"x-upsert": "true"})
    up_token = r.json()["token"]
    r = s.http.put(f"/storage/v1/object/upload/sign/private/{name}", params={"token": up_token},
                   files={"file": ("up.txt", b"replaced", "text/plain")})  # fmt: skip
    assert r.status_code == 200, r.text
    assert s.download("alice", "private", name).content == b"replaced"


def test_signing_needs_permission(s: StorageServer) -> None:
    # Outside her folder alice may not even get an upload URL; anon neither.
    r = s.call("alice", "POST", f"/object/upload/sign/private/{s['bob'].uid}/x.txt")
    storage_error(r, "403", "AccessDenied")
    r = s.call("anon", "POST", f"/object/upload/sign/private/{s['alice'].uid}/x.txt")
    storage_error(r, "403", "AccessDenied")
    storage_error(s.call(None, "POST", "/object/upload/sign/private/x.txt"), "403")
    # Signing a missing object: NoSuchKey.
    r = s.call("service", "POST", "/object/sign/private/none.txt", json={"expiresIn": 60})
    storage_error(r, "404", "NoSuchKey")
