"""Objects over HTTP as service_role: the upload forms, downloads with their headers (ETag,
304, Range, Content-Disposition), info/HEAD, listing with folders, move/copy, removal."""

from __future__ import annotations

import base64
import json
import os

import pytest

from tests.storage.conftest import StorageServer, storage_error


@pytest.fixture(scope="module")
def s(storage: StorageServer) -> StorageServer:
    for name, public in (("docs", False), ("pub", True), ("other", False)):
        r = storage.call("service", "POST", "/bucket", json={"name": name, "public": public})
        assert r.status_code == 200, r.text
    return storage


def test_raw_upload_and_download(s: StorageServer) -> None:
    meta = base64.b64encode(json.dumps({"k": "v"}).encode()).decode()
    r = s.upload(
        "service", "docs", "raw/hello.txt", b"hello world", "text/plain;charset=UTF-8",
        cache_control="max-age=60", x_metadata=meta,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["Key"] == "docs/raw/hello.txt" and r.json()["Id"]
    d = s.download("service", "docs", "raw/hello.txt")
    assert d.status_code == 200 and d.content == b"hello world"
    assert d.headers["content-type"] == "text/plain;charset=UTF-8"
    assert d.headers["cache-control"] == "max-age=60"
    assert d.headers["content-length"] == "11"
    assert d.headers["etag"].startswith('"') and d.headers["last-modified"]
    # The legacy path serves the same.
    assert s.call("service", "GET", "/object/docs/raw/hello.txt").content == b"hello world"
    row = s.auth.sql(
        "select metadata, user_metadata, path_tokens, version from storage.objects"
        " where bucket_id = 'docs' and name = 'raw/hello.txt'"
    )[0]
    md = json.loads(row["metadata"])
    assert md["size"] == md["contentLength"] == 11
    assert md["mimetype"] == "text/plain;charset=UTF-8" and md["cacheControl"] == "max-age=60"
    assert md["eTag"] == d.headers["etag"] and md["httpStatusCode"] == 200 and md["lastModified"]
    assert json.loads(row["user_metadata"]) == {"k": "v"}
    assert row["path_tokens"] == ["raw", "hello.txt"] and row["version"]


def test_multipart_upload(s: StorageServer) -> None:
    r = s.call(
        "service", "POST", "/object/docs/mp/cat.png",
        files={"file": ("cat.png", b"\x89PNG....", "image/png")},
        data={"cacheControl": "3600", "metadata": json.dumps({"who": "cat"})},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    info = s.call("service", "GET", "/object/info/docs/mp/cat.png").json()
    assert info["content_type"] == "image/png" and info["size"] == 8
    assert info["cache_control"] == "max-age=3600" and info["metadata"] == {"who": "cat"}
    assert info["name"] == "mp/cat.png" and info["bucket_id"] == "docs"
    # storage-js's field name is '' and a contentType field wins over the part's type.
    r = s.call(
        "service", "POST", "/object/docs/mp/js.bin",
        files={"": ("blob", b"abc", "application/octet-stream")},
        data={"contentType": "text/csv"},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert s.download("service", "docs", "mp/js.bin").headers["content-type"] == "text/csv"
    # No file part at all.
    r = s.call("service", "POST", "/object/docs/mp/none", data={"cacheControl": "1"},
               files={"x": (None, "just a field")})  # fmt: skip
    storage_error(r, "400", "InvalidRequest")
    assert "mp/none" not in s.rows("docs")


def test_upsert_and_update(s: StorageServer) -> None:
    assert s.upload("service", "docs", "u.txt", b"one").status_code == 200
    files_before = len(s.blob_files())
    body = storage_error(s.upload("service", "docs", "u.txt", b"two"), "409")
    assert body["message"] == "The resource already exists" and body["error"] == "Duplicate"
    assert s.download("service", "docs", "u.txt").content == b"one"
    first_id = s.call("service", "GET", "/object/info/docs/u.txt").json()["id"]
    r = s.upload("service", "docs", "u.txt", b"three", x_upsert="true")
    assert r.status_code == 200 and r.json()["Id"] == first_id
    assert s.download("service", "docs", "u.txt").content == b"three"
    r = s.upload("service", "docs", "u.txt", b"four!", method="PUT")
    assert r.status_code == 200, r.text
    assert s.download("service", "docs", "u.txt").content == b"four!"
    # Replaced versions leave no bytes behind.
    assert len(s.blob_files()) == files_before


def test_etag_range_and_download_name(s: StorageServer) -> None:
    data = os.urandom(100_000)
    assert s.upload("service", "docs", "r.bin", data, "application/octet-stream").status_code == 200
    full = s.download("service", "docs", "r.bin")
    etag = full.headers["etag"]
    r = s.download("service", "docs", "r.bin", headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.content == b""
    r = s.download("service", "docs", "r.bin", headers={"If-None-Match": '"other"'})
    assert r.status_code == 200 and r.content == data
    r = s.download("service", "docs", "r.bin", headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20]
    assert r.headers["content-range"] == "bytes 10-19/100000"
    r = s.download("service", "docs", "r.bin", headers={"Range": "bytes=99990-"})
    assert r.status_code == 206 and r.content == data[99990:]
    r = s.download("service", "docs", "r.bin", headers={"Range": "bytes=-5"})
    assert r.content == data[-5:]
    r = s.download("service", "docs", "r.bin", headers={"Range": "bytes=200000-"})
    storage_error(r, "400", "InvalidRange")
    r = s.download("service", "docs", "r.bin", params={"download": ""})
    assert r.headers["content-disposition"] == "attachment;"
    r = s.download("service", "docs", "r.bin", params={"download": "my file.bin"})
    assert r.headers["content-disposition"] == (
        "attachment; filename=my%20file.bin; filename*=UTF-8''my%20file.bin"
    )


def test_head_and_info(s: StorageServer) -> None:
    assert s.upload("service", "docs", "h.txt", b"12345").status_code == 200
    r = s.call("service", "HEAD", "/object/docs/h.txt")
    assert r.status_code == 200 and r.headers["content-length"] == "5" and r.content == b""
    assert r.headers["etag"]
    r = s.call("service", "HEAD", "/object/authenticated/docs/h.txt")
    assert r.status_code == 200
    storage_error(s.call("service", "GET", "/object/info/docs/missing.txt"), "404", "NoSuchKey")
    body = s.call("service", "GET", "/object/info/docs/missing.txt").json()
    assert body["error"] == "not_found" and body["message"] == "Object not found"


def test_public_bucket_reads(s: StorageServer) -> None:
    assert s.upload("service", "pub", "p/logo.txt", b"public!").status_code == 200
    assert s.upload("service", "docs", "secret.txt", b"private!").status_code == 200
    # No key, no token: a browser opening a public URL.
    r = s.http.get("/storage/v1/object/public/pub/p/logo.txt")
    assert r.status_code == 200 and r.content == b"public!"
    assert s.http.head("/storage/v1/object/public/pub/p/logo.txt").status_code == 200
    info = s.http.get("/storage/v1/object/info/public/pub/p/logo.txt").json()
    assert info["size"] == 7
    # A private bucket is not served publicly, as if it did not exist.
    r = s.http.get("/storage/v1/object/public/docs/secret.txt")
    storage_error(r, "404", "NoSuchBucket")
    storage_error(s.http.get("/storage/v1/object/public/pub/nope.txt"), "404", "NoSuchKey")
    storage_error(s.http.get("/storage/v1/object/public/nobucket/x.txt"), "404", "NoSuchBucket")


def test_list_folders_and_files(s: StorageServer) -> None:
    for name in ("l/a.txt", "l/b.txt", "l/sub/c.txt", "l/sub/deeper/d.txt", "l/Z.txt"):
        assert s.upload("service", "other", name, b"x").status_code == 200
    r = s.call("service", "POST", "/object/list/other", json={"prefix": "l"})
    assert r.status_code == 200, r.text
    entries = r.json()
    assert [e["name"] for e in entries] == ["a.txt", "b.txt", "sub", "Z.txt"]
    folder = next(e for e in entries if e["name"] == "sub")
    assert folder["id"] is None and folder["metadata"] is None
    file = next(e for e in entries if e["name"] == "a.txt")
    assert file["id"] and file["metadata"]["size"] == 1
    assert set(file) >= {"name", "id", "updated_at", "created_at", "last_accessed_at", "metadata"}
    sub = s.call("service", "POST", "/object/list/other", json={"prefix": "l/sub/"}).json()
    assert [e["name"] for e in sub] == ["c.txt", "deeper"]
    top = s.call("service", "POST", "/object/list/other", json={"prefix": ""}).json()
    assert [e["name"] for e in top] == ["l"]
    page = s.call(
        "service", "POST", "/object/list/other",
        json={"prefix": "l/", "limit": 2, "offset": 1,
              "sortBy": {"column": "name", "order": "desc"}},
    ).json()  # fmt: skip
    assert [e["name"] for e in page] == ["sub", "b.txt"]
    found = s.call(
        "service", "POST", "/object/list/other", json={"prefix": "l/", "search": "b"}
    ).json()
    assert [e["name"] for e in found] == ["b.txt"]
    by_time = s.call(
        "service", "POST", "/object/list/other",
        json={"prefix": "l/", "sortBy": {"column": "created_at", "order": "asc"}},
    ).json()  # fmt: skip
    assert [e["name"] for e in by_time] == ["sub", "a.txt", "b.txt", "Z.txt"]
    assert s.call("service", "POST", "/object/list/other", json={"prefix": "zz/"}).json() == []


def test_list_v2(s: StorageServer) -> None:
    for name in ("v2/a.txt", "v2/b/1.txt", "v2/b/2.txt", "v2/c.txt", "v2/d/3.txt"):
        assert s.upload("service", "other", name, b"x").status_code == 200
    r = s.call("service", "POST", "/object/list-v2/other",
               json={"prefix": "v2/", "with_delimiter": True})  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert [f["name"] for f in body["folders"]] == ["v2/b/", "v2/d/"]
    assert [o["name"] for o in body["objects"]] == ["v2/a.txt", "v2/c.txt"]
    assert body["hasNext"] is False
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = s.call("service", "POST", "/object/list-v2/other",
                      json={"prefix": "v2/", "limit": 2, "cursor": cursor}).json()  # fmt: skip
        seen += [o["name"] for o in page["objects"]]
        if not page["hasNext"]:
            break
        cursor = page["nextCursor"]
    assert seen == ["v2/a.txt", "v2/b/1.txt", "v2/b/2.txt", "v2/c.txt", "v2/d/3.txt"]


def test_move_and_copy(s: StorageServer) -> None:
    assert s.upload("service", "docs", "m/src.txt", b"moving").status_code == 200
    r = s.call(
        "service",
        "POST",
        "/object/move",
        json={"bucketId": "docs", "sourceKey": "m/src.txt", "destinationKey": "m/dst.txt"},
    )
    assert r.json() == {"message": "Successfully moved"}
    assert "m/src.txt" not in s.rows("docs")
    assert s.download("service", "docs", "m/dst.txt").content == b"moving"
    r = s.call("service", "POST", "/object/move",
               json={"bucketId": "docs", "sourceKey": "m/dst.txt", "destinationKey": "moved.txt",
                     "destinationBucket": "other"})  # fmt: skip
    assert r.status_code == 200, r.text
    assert s.download("service", "other", "moved.txt").content == b"moving"
    r = s.call(
        "service",
        "POST",
        "/object/move",
        json={"bucketId": "docs", "sourceKey": "m/gone.txt", "destinationKey": "x.txt"},
    )
    storage_error(r, "404", "NoSuchKey")

    r = s.call(
        "service",
        "POST",
        "/object/copy",
        json={"bucketId": "other", "sourceKey": "moved.txt", "destinationKey": "c/1.txt"},
    )
    assert r.status_code == 200 and r.json()["Key"] == "other/c/1.txt", r.text
    r = s.call("service", "POST", "/object/copy",
               json={"bucketId": "other", "sourceKey": "moved.txt", "destinationKey": "c.txt",
                     "destinationBucket": "docs"})  # fmt: skip
    assert r.json()["Key"] == "docs/c.txt"
    assert s.download("service", "docs", "c.txt").content == b"moving"
    assert s.download("service", "other", "moved.txt").content == b"moving"
    storage_error(
        s.call("service", "POST", "/object/copy",
               json={"bucketId": "other", "sourceKey": "moved.txt", "destinationKey": "c/1.txt"}),
        "409",
    )  # fmt: skip
    r = s.call("service", "POST", "/object/copy",
               json={"bucketId": "other", "sourceKey": "moved.txt", "destinationKey": "c/1.txt"},
               headers={"x-upsert": "true"})  # fmt: skip
    assert r.status_code == 200
    # Deleting the source leaves the copies readable.
    s.call("service", "DELETE", "/object/other", json={"prefixes": ["moved.txt"]})
    assert s.download("service", "docs", "c.txt").content == b"moving"
    assert s.download("service", "other", "c/1.txt").content == b"moving"


def test_remove(s: StorageServer) -> None:
    for name in ("rm/1", "rm/2", "rm/3"):
        assert s.upload("service", "docs", name, b"x").status_code == 200
    files_before = len(s.blob_files())
    r = s.call("service", "DELETE", "/object/docs", json={"prefixes": ["rm/1", "rm/2", "rm/9"]})
    assert r.status_code == 200, r.text
    assert sorted(o["name"] for o in r.json()) == ["rm/1", "rm/2"]
    assert {"bucket_id", "id", "metadata", "owner_id"} <= set(r.json()[0])
    assert len(s.blob_files()) == files_before - 2
    r = s.call("service", "DELETE", "/object/docs/rm/3")
    assert r.json() == {"message": "Successfully deleted"}
    storage_error(s.call("service", "DELETE", "/object/docs/rm/3"), "404", "NoSuchKey")
    storage_error(s.call("service", "DELETE", "/object/docs", json={"prefixes": []}), "400")
    r = s.call("service", "DELETE", "/object/docs", json={"prefixes": ["x"] * 1001})
    storage_error(r, "400")


def test_missing_objects_and_buckets(s: StorageServer) -> None:
    body = storage_error(s.download("service", "docs", "no/such.txt"), "404", "NoSuchKey")
    assert body["message"] == "Object not found"
    body = storage_error(s.upload("service", "nobucket", "a.txt"), "404", "NoSuchBucket")
    assert body["message"] == "Bucket not found"


def test_last_accessed_at_keeps_the_creation_time(s: StorageServer) -> None:
    """As Supabase Storage: `last_accessed_at` is the row's creation time (the column's
    default), moved by no read and no write after it — a download writes nothing."""

    def stamp(name: str) -> object:
        rows = s.auth.sql(
            "select last_accessed_at from storage.objects where bucket_id = 'docs' and name = $1",
            name,
        )
        return rows[0]["last_accessed_at"]

    assert s.upload("service", "docs", "la/a.txt", b"one").status_code == 200
    created = stamp("la/a.txt")
    assert created is not None
    assert s.download("service", "docs", "la/a.txt").content == b"one"
    assert s.call("service", "GET", "/object/info/docs/la/a.txt").status_code == 200
    assert s.call("service", "HEAD", "/object/docs/la/a.txt").status_code == 200
    assert s.download("service", "docs", "la/a.txt", headers={"range": "bytes=0-1"}).content == (
        b"on"
    )
    assert s.upload("service", "docs", "la/a.txt", b"two", x_upsert="true").status_code == 200
    assert s.upload("service", "docs", "la/a.txt", b"three", method="PUT").status_code == 200
    r = s.call(
        "service",
        "POST",
        "/object/move",
        json={"bucketId": "docs", "sourceKey": "la/a.txt", "destinationKey": "la/b.txt"},
    )
    assert r.status_code == 200, r.text
    assert s.download("service", "docs", "la/b.txt").content == b"three"
    assert stamp("la/b.txt") == created
