"""TUS resumable uploads (`/storage/v1/upload/resumable`) over HTTP, on both backends: create,
PATCH in chunks, HEAD the offset, creation-with-upload, resume after a connection dropped
mid-PATCH, a wrong offset (409), terminate, and the checks of a plain upload at creation (RLS
folder policy, bucket size limit, MIME allow-list, x-upsert) — each refusal leaving nothing
behind: no upload row, no staged bytes, no blob.  Last, a restart resumes an upload and sweeps
expired ones."""

from __future__ import annotations

import base64
import json
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import pytest

from tests.helpers import LiveServer
from tests.storage.conftest import FOLDER_POLICY, StorageServer, storage_error

TUS = {"Tus-Resumable": "1.0.0"}
OFFSET_TYPE = {"Content-Type": "application/offset+octet-stream"}


@pytest.fixture(scope="module")
def s(storage: StorageServer) -> StorageServer:
    for body in (
        {"name": "docs"},
        {"name": "private"},
        {"name": "limited", "file_size_limit": 1000, "allowed_mime_types": ["text/plain"]},
    ):
        r = storage.call("service", "POST", "/bucket", json=body)
        assert r.status_code == 200, r.text
    storage.auth.script(FOLDER_POLICY)
    return storage


def meta(**kv: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in kv.items())


def create(
    s: StorageServer, who: str, bucket: str, name: str, length: int, *,
    content_type: str = "text/plain", upsert: bool | None = None, body: bytes | None = None,
    **more: str,
) -> httpx.Response:  # fmt: skip
    headers = {**TUS, "Upload-Length": str(length),
               "Upload-Metadata": meta(bucketName=bucket, objectName=name,
                                       contentType=content_type, **more)}  # fmt: skip
    if upsert is not None:
        headers["x-upsert"] = "true" if upsert else "false"
    if body is not None:
        headers.update(OFFSET_TYPE)
    return s.call(who, "POST", "/upload/resumable", headers=headers, content=body)


def at(location: str) -> str:
    """The upload's path under /storage/v1 (the server may restart; its address stays)."""
    path = urlsplit(location).path
    assert path.startswith("/storage/v1/upload/resumable/"), location
    return path.removeprefix("/storage/v1")


def patch(s: StorageServer, who: str, location: str, offset: int, data: bytes) -> httpx.Response:
    headers = {**TUS, **OFFSET_TYPE, "Upload-Offset": str(offset)}
    return s.call(who, "PATCH", at(location), headers=headers, content=data)


def head(s: StorageServer, who: str, location: str) -> httpx.Response:
    return s.call(who, "HEAD", at(location), headers=TUS)


def upload_id(location: str) -> str:
    token = location.rsplit("/", 1)[1]
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()


def staging_dir(s: StorageServer) -> Path:
    return s.server.project / "supabase" / ".supalite" / "storage" / "tus"


def staged(s: StorageServer) -> list[str]:
    d = staging_dir(s)
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def tus_rows(s: StorageServer) -> list[str]:
    return [r["id"] for r in s.auth.sql("select id from _supalite.storage_tus_uploads")]


def unfinished(s: StorageServer) -> list[str]:
    return [
        r["id"] for r in s.auth.sql("select id from _supalite.storage_tus_uploads where not done")
    ]


def blobs(s: StorageServer) -> list[str]:
    """The backend's blobs (on disk the staging folder is beside them: not counted here)."""
    return [f for f in s.blob_files() if not f.startswith("tus/")]


class Leftovers:
    """What an upload may leave: rows, staged files, blobs — the same after a refusal."""

    def __init__(self, s: StorageServer) -> None:
        self.s = s
        self.before = self.now()

    def now(self) -> tuple[list[str], list[str], list[str]]:
        return tus_rows(self.s), staged(self.s), blobs(self.s)

    def unchanged(self) -> None:
        assert self.now() == self.before


def test_options_advertises_the_protocol(s: StorageServer) -> None:
    r = s.http.request("OPTIONS", "/storage/v1/upload/resumable")
    assert r.status_code == 204, r.text
    assert r.headers["tus-resumable"] == "1.0.0"
    assert r.headers["tus-version"] == "1.0.0"
    # What Supabase's stores (@tus/file-store, @tus/s3-store) advertise: no concatenation.
    assert r.headers["tus-extension"] == (
        "creation,creation-with-upload,creation-defer-length,termination,expiration"
    )
    assert r.headers["tus-max-size"] == str(5 * 1024 * 1024)


# The response headers of @tus/server's EXPOSED_HEADERS (what Supabase's TUS endpoint sends in
# Access-Control-Expose-Headers), and Upload-Expires: what tus-js-client reads in a browser.
TUS_EXPOSED = [
    "Location", "Tus-Extension", "Tus-Max-Size", "Tus-Resumable", "Tus-Version", "Upload-Concat",
    "Upload-Defer-Length", "Upload-Length", "Upload-Metadata", "Upload-Offset", "Upload-Expires",
]  # fmt: skip


def test_tus_headers_are_exposed_to_browsers(s: StorageServer) -> None:
    origin = {"Origin": "https://app.example"}

    def exposed(r: httpx.Response) -> set[str]:
        assert r.headers["access-control-allow-origin"] == "*"
        return {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}

    want = {h.lower() for h in TUS_EXPOSED}
    r = s.http.request("OPTIONS", "/storage/v1/upload/resumable", headers=origin)
    assert r.status_code == 204 and exposed(r) >= want
    r = s.call("service", "POST", "/upload/resumable", headers={**TUS, **origin,
               "Upload-Length": "5", "Upload-Metadata": meta(bucketName="docs",
               objectName="tus/cors.txt")})  # fmt: skip
    assert r.status_code == 201 and exposed(r) >= want
    h = s.call("service", "HEAD", at(r.headers["location"]), headers={**TUS, **origin})
    assert h.status_code == 200 and exposed(h) >= want
    d = s.call("service", "DELETE", at(r.headers["location"]), headers=TUS)
    assert d.status_code == 204


def test_create_patch_in_chunks_and_head(s: StorageServer) -> None:
    data = os.urandom(300_000)
    user_md = json.dumps({"k": "v"})
    r = create(s, "service", "docs", "tus/big.bin", len(data), content_type="application/pdf",
               cacheControl="3600", metadata=user_md)  # fmt: skip
    assert r.status_code == 201, r.text
    loc = r.headers["location"]
    assert loc.startswith(s.url + "/storage/v1/upload/resumable/")
    uid = upload_id(loc)
    bucket_name, _, version = uid.rpartition("/")
    assert bucket_name == "docs/tus/big.bin" and str(uuid.UUID(version)) == version
    assert "upload-offset" not in r.headers and r.headers["upload-expires"].endswith("GMT")
    h = head(s, "service", loc)
    assert h.status_code == 200
    assert (h.headers["upload-offset"], h.headers["upload-length"]) == ("0", "300000")
    assert h.headers["cache-control"] == "no-store"
    assert h.headers["upload-metadata"] == r.request.headers["upload-metadata"]
    for offset in (0, 100_000, 200_000):
        if offset == 200_000:
            # Not there until the last byte.
            assert "tus/big.bin" not in s.rows("docs")
            storage_error(s.download("service", "docs", "tus/big.bin"), "404")
        p = patch(s, "service", loc, offset, data[offset : offset + 100_000])
        assert p.status_code == 204, p.text
        assert p.headers["upload-offset"] == str(offset + 100_000)
        assert p.headers["tus-resumable"] == "1.0.0"
        if offset < 200_000:
            assert head(s, "service", loc).headers["upload-offset"] == str(offset + 100_000)
    assert p.headers["tus-complete"] == "1" and "upload-expires" not in p.headers
    d = s.download("service", "docs", "tus/big.bin")
    assert d.status_code == 200 and d.content == data
    info = s.call("service", "GET", "/object/info/docs/tus/big.bin").json()
    assert info["content_type"] == "application/pdf" and info["size"] == len(data)
    assert info["cache_control"] == "max-age=3600" and info["metadata"] == {"k": "v"}
    assert info["version"] == version  # the upload id's version names the blob
    # A finished upload still answers HEAD (complete) until it expires; its bytes are unstaged.
    assert head(s, "service", loc).headers["upload-offset"] == "300000"
    assert version not in staged(s) and uid not in unfinished(s)
    # ...and cannot be terminated.
    t = s.call("service", "DELETE", at(loc), headers=TUS)
    assert t.status_code == 400 and "completed" in t.text


def test_creation_with_upload(s: StorageServer) -> None:
    r = create(s, "service", "docs", "tus/whole.txt", 5, body=b"hello")
    assert r.status_code == 201, r.text
    assert r.headers["upload-offset"] == "5" and r.headers["tus-complete"] == "1"
    assert s.download("service", "docs", "tus/whole.txt").content == b"hello"
    r = create(s, "service", "docs", "tus/part.txt", 11, body=b"hello")
    assert r.status_code == 201 and r.headers["upload-offset"] == "5"
    assert "tus/part.txt" not in s.rows("docs")
    p = patch(s, "service", r.headers["location"], 5, b" world")
    assert p.status_code == 204 and p.headers["upload-offset"] == "11"
    assert s.download("service", "docs", "tus/part.txt").content == b"hello world"
    # An empty object is complete at creation.
    r = create(s, "service", "docs", "tus/empty.txt", 0)
    assert r.status_code == 201 and r.headers["tus-complete"] == "1"
    assert s.download("service", "docs", "tus/empty.txt").content == b""


def create_deferred(
    s: StorageServer, bucket: str, name: str, body: bytes | None = None
) -> httpx.Response:
    headers = {**TUS, "Upload-Defer-Length": "1",
               "Upload-Metadata": meta(bucketName=bucket, objectName=name,
                                       contentType="text/plain")}  # fmt: skip
    if body is not None:
        headers.update(OFFSET_TYPE)
    return s.call("service", "POST", "/upload/resumable", headers=headers, content=body)


def patch_length(
    s: StorageServer, location: str, offset: int, length: int, data: bytes = b""
) -> httpx.Response:
    headers = {**TUS, **OFFSET_TYPE, "Upload-Offset": str(offset), "Upload-Length": str(length)}
    return s.call("service", "PATCH", at(location), headers=headers, content=data)


def test_deferred_length(s: StorageServer) -> None:
    """creation-defer-length (tus-js-client's `uploadLengthDeferred`): created with
    `Upload-Defer-Length: 1`, HEAD says so until a PATCH declares `Upload-Length`; the object
    is stored when the bytes reach it."""
    r = create_deferred(s, "docs", "tus/deferred.txt", b"hello")
    assert r.status_code == 201, r.text
    assert r.headers["upload-offset"] == "5" and "tus-complete" not in r.headers
    loc = r.headers["location"]
    h = head(s, "service", loc)
    assert h.headers["upload-defer-length"] == "1" and "upload-length" not in h.headers
    assert h.headers["upload-offset"] == "5"
    p = patch(s, "service", loc, 5, b" big")
    assert p.status_code == 204 and p.headers["upload-offset"] == "9"
    assert "tus-complete" not in p.headers and "tus/deferred.txt" not in s.rows("docs")
    p = patch_length(s, loc, 9, 15, b" world")
    assert p.status_code == 204, p.text
    assert p.headers["upload-offset"] == "15" and p.headers["tus-complete"] == "1"
    assert s.download("service", "docs", "tus/deferred.txt").content == b"hello big world"
    h = head(s, "service", loc)
    assert h.headers["upload-length"] == "15" and "upload-defer-length" not in h.headers
    # The length declared alone, at the offset reached: complete.
    loc = create_deferred(s, "docs", "tus/at-offset.txt", b"abc").headers["location"]
    p = patch_length(s, loc, 3, 3)
    assert p.status_code == 204 and p.headers["tus-complete"] == "1"
    assert s.download("service", "docs", "tus/at-offset.txt").content == b"abc"


INVALID_LENGTH = "Upload-Length or Upload-Defer-Length header required\n"


def test_deferred_length_refusals(s: StorageServer) -> None:
    """@tus/server's rules: the length is declared once, not below the offset, within the
    bucket's limit; until then the bytes may not pass the limit.  Each refusal keeps what the
    upload had."""
    loc = create_deferred(s, "limited", "deferred.txt").headers["location"]
    p = patch_length(s, loc, 0, 1001)
    assert (p.status_code, p.text) == (413, "Maximum size exceeded\n")
    p = patch(s, "service", loc, 0, b"x" * 1001)
    assert (p.status_code, p.text) == (413, "upload's size exceeded\n")

    def streamed() -> object:
        yield b"x" * 600
        yield b"y" * 600

    p = s.call("service", "PATCH", at(loc), content=streamed(),
               headers={**TUS, **OFFSET_TYPE, "Upload-Offset": "0"})  # fmt: skip
    assert (p.status_code, p.text) == (413, "Maximum size exceeded\n")
    h = head(s, "service", loc)
    assert h.headers["upload-offset"] == "0" and h.headers["upload-defer-length"] == "1"
    assert patch(s, "service", loc, 0, b"abcd").status_code == 204
    p = patch_length(s, loc, 4, 3)  # below what arrived
    assert (p.status_code, p.text) == (400, INVALID_LENGTH)
    assert patch_length(s, loc, 4, 10, b"ef").status_code == 204
    p = patch_length(s, loc, 6, 10)  # declared already
    assert (p.status_code, p.text) == (400, INVALID_LENGTH)
    p = patch(s, "service", loc, 6, b"ghijk")  # past the declared length
    assert (p.status_code, p.text) == (413, "upload's size exceeded\n")
    assert head(s, "service", loc).headers["upload-length"] == "10"
    assert patch(s, "service", loc, 6, b"ghij").headers["tus-complete"] == "1"
    assert s.download("service", "limited", "deferred.txt").content == b"abcdefghij"
    assert upload_id(loc).rpartition("/")[2] not in staged(s)
    # An upload created with its length cannot declare another.
    loc = create(s, "service", "docs", "tus/known.txt", 5).headers["location"]
    p = patch_length(s, loc, 0, 5, b"hello")
    assert (p.status_code, p.text) == (400, INVALID_LENGTH)
    assert head(s, "service", loc).headers["upload-offset"] == "0"
    assert s.call("service", "DELETE", at(loc), headers=TUS).status_code == 204


def test_wrong_offset_is_409_and_changes_nothing(s: StorageServer) -> None:
    r = create(s, "service", "docs", "tus/offset.txt", 10, body=b"abc")
    loc = r.headers["location"]
    for wrong in (0, 5):
        p = patch(s, "service", loc, wrong, b"xyz")
        assert p.status_code == 409 and p.text == "Upload-Offset conflict\n"
    assert head(s, "service", loc).headers["upload-offset"] == "3"
    assert patch(s, "service", loc, 3, b"defghij").status_code == 204
    assert s.download("service", "docs", "tus/offset.txt").content == b"abcdefghij"


def _send_partial_patch(s: StorageServer, location: str, who: str, declared: int, part: bytes,
                        watch: Path) -> None:  # fmt: skip
    """A PATCH declaring `declared` bytes that sends only `part` and then drops the connection
    — once the server has staged all of `part` (so what it must keep is known exactly)."""
    u = urlsplit(s.url)
    headers = {**s[who].headers(), **TUS, **OFFSET_TYPE, "Upload-Offset": "0",
               "Content-Length": str(declared), "Host": u.netloc}  # fmt: skip
    head_lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = f"PATCH /storage/v1{at(location)} HTTP/1.1\r\n{head_lines}\r\n".encode()
    with socket.create_connection((u.hostname, u.port)) as sock:
        sock.sendall(request + part)
        deadline = time.monotonic() + 30
        while not (watch.exists() and watch.stat().st_size == len(part)):
            assert time.monotonic() < deadline, "the server never staged the bytes sent"
            time.sleep(0.02)
        # Closing here drops the connection in the middle of the PATCH's body.


def test_resume_after_a_dropped_connection(s: StorageServer) -> None:
    data = os.urandom(200_000)
    r = create(s, "alice", "private", f"{s['alice'].uid}/resumed.bin", len(data),
               content_type="application/octet-stream")  # fmt: skip
    assert r.status_code == 201, r.text
    loc = r.headers["location"]
    version = upload_id(loc).rpartition("/")[2]
    _send_partial_patch(s, loc, "alice", len(data), data[:70_000], staging_dir(s) / version)
    # HEAD waits for the dropped PATCH to finish keeping what arrived, then tells it.
    h = head(s, "alice", loc)
    assert h.status_code == 200 and h.headers["upload-offset"] == "70000"
    assert f"{s['alice'].uid}/resumed.bin" not in s.rows("private")
    p = patch(s, "alice", loc, 70_000, data[70_000:])
    assert p.status_code == 204, p.text
    assert p.headers["upload-offset"] == "200000"
    d = s.download("alice", "private", f"{s['alice'].uid}/resumed.bin")
    assert d.status_code == 200 and d.content == data
    owner = s.auth.sql(
        "select owner_id from storage.objects where bucket_id = 'private' and name = $1",
        f"{s['alice'].uid}/resumed.bin",
    )[0]["owner_id"]
    assert owner == s["alice"].uid


def test_rls_folder_policy_refuses_at_creation(s: StorageServer) -> None:
    left = Leftovers(s)
    r = create(s, "alice", "private", f"{s['bob'].uid}/intruder.txt", 5)
    assert r.status_code == 403 and r.text == "new row violates row-level security policy"
    assert r.headers["tus-resumable"] == "1.0.0"
    left.unchanged()
    # Alice's own folder is fine; Bob cannot see or continue her upload.
    r = create(s, "alice", "private", f"{s['alice'].uid}/mine.txt", 10, body=b"hello")
    assert r.status_code == 201, r.text
    loc = r.headers["location"]
    assert head(s, "bob", loc).status_code == 404
    assert patch(s, "bob", loc, 5, b"world").status_code == 404
    assert s.call("bob", "DELETE", at(loc), headers=TUS).status_code == 404
    assert patch(s, "alice", loc, 5, b"world").status_code == 204
    assert s.download("alice", "private", f"{s['alice'].uid}/mine.txt").content == b"helloworld"


def test_size_limits(s: StorageServer) -> None:
    left = Leftovers(s)
    # The bucket's limit (1000) and the global one (5 MiB), against Upload-Length.
    r = create(s, "service", "limited", "big.txt", 1001)
    assert r.status_code == 413 and r.text == "Maximum size exceeded\n"
    r = create(s, "service", "docs", "huge.bin", 5 * 1024 * 1024 + 1)
    assert r.status_code == 413 and r.text == "Maximum size exceeded\n"
    left.unchanged()
    # More bytes than the upload's length, declared or streamed: refused whole.
    r = create(s, "service", "limited", "ten.txt", 10, body=b"abc")
    loc = r.headers["location"]
    p = patch(s, "service", loc, 3, b"x" * 20)
    assert p.status_code == 413 and p.text == "upload's size exceeded\n"

    def streamed() -> object:
        yield b"x" * 5
        yield b"y" * 5

    p = s.call("service", "PATCH", at(loc), content=streamed(),
               headers={**TUS, **OFFSET_TYPE, "Upload-Offset": "3"})  # fmt: skip
    assert p.status_code == 413 and p.text == "upload's size exceeded\n"
    assert head(s, "service", loc).headers["upload-offset"] == "3"
    assert "ten.txt" not in s.rows("limited")
    assert patch(s, "service", loc, 3, b"defghij").status_code == 204
    assert s.download("service", "limited", "ten.txt").content == b"abcdefghij"


def test_mime_outside_the_allow_list(s: StorageServer) -> None:
    left = Leftovers(s)
    r = create(s, "service", "limited", "pic.png", 10, content_type="image/png")
    assert r.status_code == 415 and r.text == "mime type image/png is not supported"
    left.unchanged()


def test_upsert(s: StorageServer) -> None:
    assert s.upload("service", "docs", "tus/exists.txt", b"old").status_code == 200
    left = Leftovers(s)
    for upsert in (None, False):
        r = create(s, "service", "docs", "tus/exists.txt", 3, upsert=upsert)
        assert r.status_code == 409 and r.text == "The resource already exists"
    left.unchanged()
    r = create(s, "service", "docs", "tus/exists.txt", 3, upsert=True, body=b"new")
    assert r.status_code == 201 and r.headers["tus-complete"] == "1"
    assert s.download("service", "docs", "tus/exists.txt").content == b"new"
    # The replaced version's blob went with it.
    assert len(blobs(s)) == len(left.before[2])


def test_object_created_meanwhile_without_upsert(s: StorageServer) -> None:
    r = create(s, "service", "docs", "tus/race.txt", 6, body=b"abc")
    loc = r.headers["location"]
    assert s.upload("service", "docs", "tus/race.txt", b"first").status_code == 200
    left = Leftovers(s)
    p = patch(s, "service", loc, 3, b"def")
    assert p.status_code == 409 and p.text == "The resource already exists"
    assert s.download("service", "docs", "tus/race.txt").content == b"first"
    # The refused upload is gone with its bytes; nothing else changed.
    rows, files, blobs = left.now()
    assert upload_id(loc) not in rows and blobs == left.before[2]
    assert upload_id(loc).rpartition("/")[2] not in files


def test_terminate(s: StorageServer) -> None:
    left = Leftovers(s)
    r = create(s, "service", "docs", "tus/dropped.txt", 10, body=b"abc")
    loc = r.headers["location"]
    assert upload_id(loc) in tus_rows(s)
    d = s.call("service", "DELETE", at(loc), headers=TUS)
    assert d.status_code == 204 and d.headers["tus-resumable"] == "1.0.0"
    assert head(s, "service", loc).status_code == 404
    assert patch(s, "service", loc, 3, b"def").status_code == 404
    assert "tus/dropped.txt" not in s.rows("docs")
    left.unchanged()


def test_bad_requests(s: StorageServer) -> None:
    left = Leftovers(s)
    ok_meta = meta(bucketName="docs", objectName="tus/bad.txt")
    cases = [
        ({"Upload-Length": "3", "Upload-Metadata": ok_meta}, 412, "Tus-Resumable Required\n"),
        ({**TUS, "Upload-Metadata": ok_meta}, 400,
         "Upload-Length or Upload-Defer-Length header required\n"),
        ({**TUS, "Upload-Length": "-1", "Upload-Metadata": ok_meta}, 400,
         "Invalid upload-length\n"),
        ({**TUS, "Upload-Length": "3"}, 400, "Metadata header is required"),
        ({**TUS, "Upload-Length": "3", "Upload-Metadata": "bucketName !!!"}, 400, None),
        ({**TUS, "Upload-Length": "3", "Upload-Metadata": meta(bucketName="nope",
          objectName="x.txt")}, 404, "Bucket not found"),
        ({**TUS, "Upload-Length": "3", "Upload-Metadata": meta(bucketName="docs",
          objectName="../x.txt")}, 400, None),
        ({**TUS, "Upload-Defer-Length": "1", "Upload-Length": "3", "Upload-Metadata": ok_meta},
         400, "Upload-Length or Upload-Defer-Length header required\n"),
        ({**TUS, "Upload-Defer-Length": "2", "Upload-Metadata": ok_meta}, 400,
         "Invalid upload-defer-length\n"),
        # Concatenation, as @tus/server answers it for Supabase (no store has it).
        ({**TUS, "Upload-Concat": "partial", "Upload-Length": "3", "Upload-Metadata": ok_meta},
         501, "Concatenation extension is not (yet) supported. Disable parallel uploads in the "
         "tus client.\n"),
        ({**TUS, "Upload-Concat": "final;/a /b", "Upload-Metadata": ok_meta}, 501,
         "Concatenation extension is not (yet) supported. Disable parallel uploads in the "
         "tus client.\n"),
        ({**TUS, "Upload-Concat": "whole", "Upload-Length": "3", "Upload-Metadata": ok_meta},
         400, "Invalid upload-concat\n"),
    ]  # fmt: skip
    for headers, status, body in cases:
        r = s.call("service", "POST", "/upload/resumable", headers=headers)
        assert r.status_code == status, (headers, r.status_code, r.text)
        if body is not None:
            assert r.text == body
    # No JWT: Storage's own error, before the protocol.
    r = s.http.post("/storage/v1/upload/resumable",
                    headers={**TUS, "Upload-Length": "3", "Upload-Metadata": ok_meta})  # fmt: skip
    storage_error(r, "403", "AccessDenied")
    # Upload URLs that name nothing.
    for token in ("bm90aGluZw", "!!!", base64.urlsafe_b64encode(b"docs/x/" + b"1" * 36).decode()):
        assert (
            s.call("service", "HEAD", f"/upload/resumable/{token}", headers=TUS).status_code == 404
        )
    left.unchanged()
    # PATCH without the protocol's headers.
    loc = create(s, "service", "docs", "tus/hdr.txt", 3).headers["location"]
    p = s.call("service", "PATCH", at(loc), headers={**TUS, **OFFSET_TYPE}, content=b"abc")
    assert p.status_code == 403 and p.text == "Upload-Offset header required\n"
    p = s.call("service", "PATCH", at(loc), headers={**TUS, "Upload-Offset": "0",
               "Content-Type": "text/plain"}, content=b"abc")  # fmt: skip
    assert p.status_code == 400
    assert head(s, "service", loc).headers["upload-offset"] == "0"


def sign_upload(s: StorageServer, who: str, bucket: str, name: str, **headers: str) -> str:
    """A signed upload URL's token, from `POST /object/upload/sign/…`."""
    r = s.call(who, "POST", f"/object/upload/sign/{bucket}/{name}", headers=headers)
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def signed_call(
    s: StorageServer, method: str, path: str, signature: str | None, **kw: Any
) -> httpx.Response:
    """A request to the signed TUS routes with the anon apikey only: no user JWT."""
    headers = {**TUS, "apikey": s["anon"].key, **kw.pop("headers", {})}
    if signature is not None:
        headers["x-signature"] = signature
    return s.http.request(method, "/storage/v1" + path, headers=headers, **kw)


def signed_create(
    s: StorageServer, signature: str | None, bucket: str, name: str, length: int, **more: str
) -> httpx.Response:
    headers = {"Upload-Length": str(length), **more,
               "Upload-Metadata": meta(bucketName=bucket, objectName=name,
                                       contentType="application/octet-stream")}  # fmt: skip
    return signed_call(s, "POST", "/upload/resumable/sign", signature, headers=headers)


def signed_patch(
    s: StorageServer, signature: str | None, location: str, offset: int, data: bytes
) -> httpx.Response:
    headers = {**OFFSET_TYPE, "Upload-Offset": str(offset)}
    return signed_call(s, "PATCH", at(location), signature, headers=headers, content=data)


def test_signed_upload_url_authorises_a_resumable_upload(s: StorageServer) -> None:
    """As Supabase's `/upload/resumable/sign`: the token of a signed upload URL in
    `x-signature`, no JWT; the object is owned by whoever signed the URL (RLS was checked
    then, in her folder of `private`)."""
    name = f"{s['alice'].uid}/signed-tus.bin"
    token = sign_upload(s, "alice", "private", name)
    data = os.urandom(250_000)
    r = signed_create(s, token, "private", name, len(data))
    assert r.status_code == 201, r.text
    loc = r.headers["location"]
    assert loc.startswith(s.url + "/storage/v1/upload/resumable/sign/")
    assert upload_id(loc).rpartition("/")[0] == f"private/{name}"
    h = signed_call(s, "HEAD", at(loc), token)
    assert h.status_code == 200 and h.headers["upload-offset"] == "0"
    p = signed_patch(s, token, loc, 0, data[:100_000])
    assert p.status_code == 204 and p.headers["upload-offset"] == "100000", p.text
    assert name not in s.rows("private")
    p = signed_patch(s, token, loc, 100_000, data[100_000:])
    assert p.status_code == 204 and p.headers["tus-complete"] == "1", p.text
    d = s.download("alice", "private", name)
    assert d.status_code == 200 and d.content == data
    row = s.auth.sql("select owner_id from storage.objects where name = $1", name)[0]
    assert row["owner_id"] == s["alice"].uid
    # The token's upsert decides, not the x-upsert header: this one does not overwrite.
    r = signed_create(s, token, "private", name, 3, **{"x-upsert": "true"})
    assert r.status_code == 201, r.text
    p = signed_patch(s, token, r.headers["location"], 0, b"new")
    assert p.status_code == 409 and p.text == "The resource already exists", p.text
    assert s.download("alice", "private", name).content == data
    # One signed with x-upsert does.
    upsert_token = sign_upload(s, "alice", "private", name, **{"x-upsert": "true"})
    r = signed_create(s, upsert_token, "private", name, 3)
    assert r.status_code == 201, r.text
    assert signed_patch(s, upsert_token, r.headers["location"], 0, b"new").status_code == 204
    assert s.download("alice", "private", name).content == b"new"


def test_signed_resumable_upload_refusals(s: StorageServer) -> None:
    """Supabase's errors, as `@tus/server` sends them (status, message as plain text); each
    refusal leaves nothing behind."""
    name = f"{s['alice'].uid}/refused.txt"
    token = sign_upload(s, "alice", "private", name)
    left = Leftovers(s)
    key = s.server.info["JWT secret"]
    now = int(time.time())
    claims = {"url": f"private/{name}", "scope": "upload", "owner": s["alice"].uid,
              "upsert": False, "iat": now - 120}  # fmt: skip
    forged = jwt.encode({**claims, "exp": now + 3600}, "not-the-secret-" + key, "HS256")
    expired = jwt.encode({**claims, "exp": now - 60}, key, "HS256")
    other = sign_upload(s, "alice", "private", f"{s['alice'].uid}/other.txt")
    download = jwt.encode(
        {"url": f"private/{name}", "scope": "download", "iat": now, "exp": now + 60}, key, "HS256"
    )
    cases = [
        (None, "Missing x-signature header"),
        ("", "Missing x-signature header"),
        ("not a jwt", "Invalid Compact JWS"),
        (forged, "signature verification failed"),
        (expired, '"exp" claim timestamp check failed'),
        (other, "Invalid signature"),
        (download, "Token is not scoped for upload"),
    ]
    for signature, message in cases:
        r = signed_create(s, signature, "private", name, 5)
        assert (r.status_code, r.text) == (400, message), signature
        assert r.headers["tus-resumable"] == "1.0.0"
    # A user's JWT is no signature.
    r = signed_create(s, s["alice"].token, "private", name, 5)
    assert r.status_code == 400 and name not in s.rows("private")
    left.unchanged()
    # Every request of the upload is checked against the upload's own object.
    r = signed_create(s, token, "private", name, 10)
    assert r.status_code == 201, r.text
    loc = r.headers["location"]
    for signature, message in ((None, "Missing x-signature header"), (other, "Invalid signature"),
                               (forged, "signature verification failed")):  # fmt: skip
        p = signed_patch(s, signature, loc, 0, b"hello")
        assert (p.status_code, p.text) == (400, message)
        h = signed_call(s, "HEAD", at(loc), signature)
        assert h.status_code == 400
        d = signed_call(s, "DELETE", at(loc), signature)
        assert (d.status_code, d.text) == (400, message)
    assert signed_call(s, "HEAD", at(loc), token).headers["upload-offset"] == "0"
    assert signed_call(s, "DELETE", at(loc), token).status_code == 204
    left.unchanged()


def test_restart_resumes_and_sweeps_expired(s: StorageServer) -> None:
    """Last in the module: the server restarts.  An unfinished upload survives it (state in the
    database, bytes in the data folder); an expired one is swept at start with its bytes."""
    keep = create(s, "service", "docs", "tus/survivor.txt", 10, body=b"hello").headers["location"]
    old = create(s, "service", "docs", "tus/expired.txt", 10, body=b"stale").headers["location"]
    s.auth.sql(
        "update _supalite.storage_tus_uploads set expires_at = now() - interval '1 second'"
        " where id = $1",
        upload_id(old),
    )
    assert head(s, "service", old).status_code == 410
    p = patch(s, "service", old, 5, b"later")
    assert p.status_code == 410 and p.text == "The file for this url no longer exists\n"
    old_version = upload_id(old).rpartition("/")[2]
    assert old_version in staged(s)
    s.server.stop()
    restarted = LiveServer(s.server.project).start()
    s.auth.server = restarted
    try:
        assert upload_id(old) not in tus_rows(s) and old_version not in staged(s)
        assert head(s, "service", keep).headers["upload-offset"] == "5"
        assert patch(s, "service", keep, 5, b"world").status_code == 204
        assert s.download("service", "docs", "tus/survivor.txt").content == b"helloworld"
    finally:
        restarted.stop()  # the module's fixture stops only the server it started
