"""ETags as Supabase Storage makes them, on both backends: S3's ETag of the bytes — their MD5,
quoted — in the `ETag` header, in `metadata.eTag` and in the info `etag`, for every way an
object is written (plain upload, multipart form, upsert, copy, move, signed upload URL, TUS),
and `If-None-Match` with it answers 304.  An upload large enough to go to S3 as a multipart
upload has S3's multipart ETag instead (`"<md5 of the parts' MD5s>-<parts>"`), the same for the
same bytes however they arrived: checked through HTTP on a server of its own, whose global
limit is above one part (the other HTTP tests' 5 MiB stays below it)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable

import pytest

from tests.auth.conftest import AuthServer
from tests.storage.conftest import StorageServer, make_storage_server
from tests.storage.s3server import MotoS3

S3_PART = 8 * 1024 * 1024  # the S3 backend's part size (docs/storage.md)


@pytest.fixture(scope="module")
def s(storage: StorageServer) -> StorageServer:
    r = storage.call("service", "POST", "/bucket", json={"name": "tags"})
    assert r.status_code == 200, r.text
    return storage


def md5_etag(data: bytes) -> str:
    return '"' + hashlib.md5(data).hexdigest() + '"'


def row_etag(s: StorageServer, name: str) -> str:
    rows = s.auth.sql(
        "select metadata from storage.objects where bucket_id = 'tags' and name = $1", name
    )
    return str(json.loads(rows[0]["metadata"])["eTag"])


def multipart_etag(data: bytes, part: int) -> str:
    """S3's ETag of a multipart upload cut into `part`-byte parts, computed here."""
    digests = [hashlib.md5(data[i : i + part]).digest() for i in range(0, len(data), part)]
    return f'"{hashlib.md5(b"".join(digests)).hexdigest()}-{len(digests)}"'


def assert_etag(s: StorageServer, name: str, data: bytes, want: str | None = None) -> None:
    """Every place the ETag shows is `want` (default: the MD5 of `data`), and the download
    serves `data`."""
    want = want or md5_etag(data)
    d = s.download("service", "tags", name)
    assert d.status_code == 200 and d.content == data
    assert d.headers["etag"] == want
    assert row_etag(s, name) == want
    assert s.call("service", "HEAD", f"/object/tags/{name}").headers["etag"] == want
    assert s.call("service", "GET", f"/object/info/tags/{name}").json()["etag"] == want


def test_upload_etag_is_the_md5_and_if_none_match_is_304(s: StorageServer) -> None:
    data = os.urandom(300_000)
    assert s.upload("service", "tags", "a.bin", data, "application/octet-stream").status_code == 200
    assert_etag(s, "a.bin", data)
    etag = md5_etag(data)
    r = s.download("service", "tags", "a.bin", headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == etag
    r = s.download("service", "tags", "a.bin", headers={"If-None-Match": f'"x", {etag}'})
    assert r.status_code == 304
    r = s.download("service", "tags", "a.bin", headers={"If-None-Match": md5_etag(b"other")})
    assert r.status_code == 200 and r.content == data
    # The same bytes under another name: the same ETag (it is the content's, not the row's).
    assert (
        s.upload("service", "tags", "a2.bin", data, "application/octet-stream").status_code == 200
    )
    assert row_etag(s, "a2.bin") == etag
    # Empty and multipart-form bodies.
    assert s.upload("service", "tags", "empty.txt", b"").status_code == 200
    assert_etag(s, "empty.txt", b"")
    r = s.call("service", "POST", "/object/tags/form.png",
               files={"file": ("form.png", b"\x89PNG form", "image/png")})  # fmt: skip
    assert r.status_code == 200, r.text
    assert_etag(s, "form.png", b"\x89PNG form")


def test_upsert_changes_the_etag_with_the_bytes(s: StorageServer) -> None:
    assert s.upload("service", "tags", "u.txt", b"one").status_code == 200
    old = md5_etag(b"one")
    assert s.upload("service", "tags", "u.txt", b"two", x_upsert="true").status_code == 200
    assert_etag(s, "u.txt", b"two")
    # A client's cached copy of the old bytes is stale now.
    r = s.download("service", "tags", "u.txt", headers={"If-None-Match": old})
    assert r.status_code == 200 and r.content == b"two"
    assert s.upload("service", "tags", "u.txt", b"three", method="PUT").status_code == 200
    assert_etag(s, "u.txt", b"three")


def test_copy_and_move_keep_the_content_etag(s: StorageServer) -> None:
    data = b"copy me"
    assert s.upload("service", "tags", "c/src.txt", data).status_code == 200
    body = {"bucketId": "tags", "sourceKey": "c/src.txt", "destinationKey": "c/copy.txt"}
    r = s.call("service", "POST", "/object/copy", json=body)
    assert r.status_code == 200, r.text
    assert_etag(s, "c/copy.txt", data)
    body = {"bucketId": "tags", "sourceKey": "c/copy.txt", "destinationKey": "c/moved.txt"}
    r = s.call("service", "POST", "/object/move", json=body)
    assert r.status_code == 200, r.text
    assert_etag(s, "c/moved.txt", data)


def test_signed_upload_url_etag(s: StorageServer) -> None:
    r = s.call("service", "POST", "/object/upload/sign/tags/signed.txt")
    assert r.status_code == 200, r.text
    data = b"through a signed upload URL"
    put = s.http.put("/storage/v1" + r.json()["url"], content=data,
                     headers={"content-type": "text/plain"})  # fmt: skip
    assert put.status_code == 200, put.text
    assert_etag(s, "signed.txt", data)


def test_tus_upload_etag(s: StorageServer) -> None:
    data = os.urandom(200_000)
    md = ",".join(
        f"{k} {base64.b64encode(v.encode()).decode()}"
        for k, v in {
            "bucketName": "tags",
            "objectName": "tus.bin",
            "contentType": "application/octet-stream",
        }.items()
    )
    tus = {"Tus-Resumable": "1.0.0"}
    r = s.call("service", "POST", "/upload/resumable",
               headers={**tus, "Upload-Length": str(len(data)), "Upload-Metadata": md})  # fmt: skip
    assert r.status_code == 201, r.text
    path = r.headers["location"].split("/storage/v1", 1)[1]
    for offset in (0, 100_000):
        r = s.call("service", "PATCH", path, content=data[offset : offset + 100_000],
                   headers={**tus, "Upload-Offset": str(offset),
                            "Content-Type": "application/offset+octet-stream"})  # fmt: skip
        assert r.status_code == 204, r.text
    assert_etag(s, "tus.bin", data)


@pytest.fixture(scope="module")
def s3_big(auth_server_factory: Callable[..., AuthServer], moto_s3: MotoS3) -> StorageServer:
    """A server on the S3 backend whose global limit lets an upload span two parts."""

    def factory(edit: Callable[[str], str]) -> AuthServer:
        return auth_server_factory(
            lambda text: edit(text).replace('file_size_limit = "5MiB"', 'file_size_limit = "20MiB"')
        )

    s = make_storage_server(factory, "s3", moto_s3)
    r = s.call("service", "POST", "/bucket", json={"name": "tags"})
    assert r.status_code == 200, r.text
    return s


def test_s3_multipart_upload_etag_through_http(s3_big: StorageServer) -> None:
    data = os.urandom(S3_PART + 1)  # the smallest body that goes up in two parts
    want = multipart_etag(data, S3_PART)
    assert want.endswith('-2"') and want != md5_etag(data)
    r = s3_big.upload("service", "tags", "big.bin", data, "application/octet-stream")
    assert r.status_code == 200, r.text
    assert_etag(s3_big, "big.bin", data, want)
    # As a multipart form (storage-js's way), where the file's bytes start at an offset of the
    # body: the parts, and so the ETag, are the same.
    r = s3_big.call("service", "POST", "/object/tags/form.bin",
                    files={"file": ("form.bin", data, "application/octet-stream")})  # fmt: skip
    assert r.status_code == 200, r.text
    assert_etag(s3_big, "form.bin", data, want)
    r = s3_big.download("service", "tags", "form.bin", headers={"If-None-Match": want})
    assert r.status_code == 304 and r.headers["etag"] == want


@pytest.fixture(scope="module")
def mtime_disk(auth_server_factory: Callable[..., AuthServer]) -> StorageServer:
    """The disk backend with Supabase's STORAGE_FILE_ETAG_ALGORITHM=mtime."""
    env = {"STORAGE_FILE_ETAG_ALGORITHM": "mtime"}
    s = make_storage_server(lambda edit: auth_server_factory(edit, env), "disk")
    r = s.call("service", "POST", "/bucket", json={"name": "tags"})
    assert r.status_code == 200, r.text
    return s


def test_mtime_etags_on_disk(mtime_disk: StorageServer) -> None:
    """`"<mtime in ms>-<size>"` in hex, as Supabase's file backend makes them with `mtime`:
    no hashing of the bytes, and a new one when the object is written again."""
    s = mtime_disk
    data = os.urandom(3000)
    assert s.upload("service", "tags", "m.bin", data, "application/octet-stream").is_success
    tag = s.download("service", "tags", "m.bin").headers["etag"]
    assert_etag(s, "m.bin", data, tag)
    (blob,) = [f for f in s.blob_files() if not f.startswith("tus")]
    root = s.server.project / "supabase" / ".supalite" / "storage"
    mtime_ms = (root / blob).stat().st_mtime_ns // 1_000_000
    whole, _, size = tag.strip('"').partition("-")
    assert int(whole.split(".")[0], 16) == mtime_ms and int(size, 16) == len(data)
    r = s.upload("service", "tags", "m.bin", data[:2000], "text/plain", x_upsert="true")
    assert r.is_success, r.text
    again = s.download("service", "tags", "m.bin").headers["etag"]
    assert again != tag and again.endswith(f'-{2000:x}"')
