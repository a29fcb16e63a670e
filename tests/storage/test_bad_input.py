"""Hostile and malformed input: every case answers Supabase's error and writes nothing — no
row, no blob, no temporary file."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.storage.conftest import StorageServer, storage_error

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def s(storage: StorageServer) -> StorageServer:
    assert storage.call("service", "POST", "/bucket", json={"name": "docs"}).status_code == 200
    return storage


def nothing_written(s: StorageServer, bucket: str, before: list[str]) -> None:
    assert s.blob_files() == before  # no blob and no leftover in .tmp
    assert s.auth.sql("select 1 from storage.objects where bucket_id = $1", bucket) == []


@pytest.mark.parametrize(
    "raw_path",
    [
        "a/%2e%2e/%2e%2e/etc/passwd",
        "%2e%2e/x",
        "a/%2e/b",
        "%2Fabsolute",
        "nul%00byte",
        "back%5Cslash",
        "x" * 1025,
        "caf%C3%A9",
        "a/%7Bbrace%7D",
    ],
)
def test_rejected_keys(s: StorageServer, raw_path: str) -> None:
    before = s.blob_files()
    r = s.call("service", "POST", f"/object/docs/{raw_path}", content=b"x",
               headers={"content-type": "text/plain"})  # fmt: skip
    body = storage_error(r, "400", "InvalidKey")
    assert body["message"].startswith("Invalid key: ")
    nothing_written(s, "docs", before)


def test_control_characters_match_no_route(s: StorageServer) -> None:
    # Starlette's path patterns do not span a newline: such a path reaches no Storage route
    # at all (the gateway's 404), which writes nothing either.
    before = s.blob_files()
    r = s.call("service", "POST", "/object/docs/new%0Aline", content=b"x")
    assert r.status_code == 404
    nothing_written(s, "docs", before)


def test_rejected_keys_in_move_copy_and_signing(s: StorageServer) -> None:
    assert s.upload("service", "docs", "ok.txt", b"x").status_code == 200
    for op in ("move", "copy"):
        r = s.call(
            "service",
            "POST",
            f"/object/{op}",
            json={"bucketId": "docs", "sourceKey": "ok.txt", "destinationKey": "../x"},
        )
        storage_error(r, "400", "InvalidKey")
    r = s.call("service", "POST", "/object/upload/sign/docs/a/%2e%2e/b")
    storage_error(r, "400", "InvalidKey")
    assert s.rows("docs") == ["ok.txt"]
    s.call("service", "DELETE", "/object/docs", json={"prefixes": ["ok.txt"]})


def test_oversized_body_refused_while_streaming(s: StorageServer) -> None:
    before = s.blob_files()
    # Declared length over the bucket's 1 MiB: refused before reading.
    r = s.upload("service", "configured", "big.txt", b"x" * (3 * MiB))
    body = storage_error(r, "413", "EntityTooLarge")
    assert body["message"] == "The object exceeded the maximum allowed size"
    assert body["error"] == "Payload too large"

    # No declared length (chunked): stopped once past the limit.
    def chunks() -> Iterator[bytes]:
        for _ in range(3):
            yield b"y" * MiB

    r = s.call("service", "POST", "/object/configured/chunked.txt", content=chunks(),
               headers={"content-type": "text/plain"})  # fmt: skip
    storage_error(r, "413", "EntityTooLarge")
    # Multipart (its length is not the file's): the same.
    r = s.call("service", "POST", "/object/configured/mp.txt",
               files={"file": ("mp.txt", b"z" * (2 * MiB), "text/plain")})  # fmt: skip
    storage_error(r, "413", "EntityTooLarge")
    # The global limit (5 MiB) applies to buckets without their own.
    r = s.call("service", "POST", "/object/docs/huge.bin",
               content=(b"h" * MiB for _ in range(6)),
               headers={"content-type": "application/octet-stream"})  # fmt: skip
    storage_error(r, "413", "EntityTooLarge")
    nothing_written(s, "configured", before)
    nothing_written(s, "docs", before)
    # Exactly at the limit is fine.
    r = s.upload("service", "configured", "exact.txt", b"e" * MiB)
    assert r.status_code == 200, r.text
    s.call("service", "DELETE", "/object/configured", json={"prefixes": ["exact.txt"]})


def test_mime_type_outside_the_allow_list(s: StorageServer) -> None:
    before = s.blob_files()
    for ctype in ("application/pdf", "imagepng", "video/mp4"):
        body = storage_error(
            s.upload("service", "configured", "f.bin", b"x", ctype), "415", "InvalidMimeType"
        )
        assert body["message"] == f"mime type {ctype} is not supported"
    r = s.call("service", "POST", "/object/configured/z.zip",
               files={"file": ("z.zip", b"PK", "application/zip")})  # fmt: skip
    storage_error(r, "415", "InvalidMimeType")
    nothing_written(s, "configured", before)
    for ctype in ("image/png", "image/webp", "text/plain;charset=UTF-8"):
        r = s.upload("service", "configured", "ok", b"x", ctype, x_upsert="true")
        assert r.status_code == 200, (ctype, r.text)
    s.call("service", "DELETE", "/object/configured", json={"prefixes": ["ok"]})


def test_interrupted_upload_leaves_nothing(s: StorageServer) -> None:
    before = s.blob_files()
    u = urlsplit(s.url)
    sock = socket.create_connection((u.hostname, u.port))
    head = (
        "POST /storage/v1/object/docs/interrupted.bin HTTP/1.1\r\n"
        f"Host: {u.netloc}\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {4 * MiB}\r\n"
        f"apikey: {s['service'].key}\r\nAuthorization: Bearer {s['service'].key}\r\n\r\n"
    )
    sock.sendall(head.encode() + b"i" * (MiB + 12345))
    time.sleep(0.5)  # let the server start writing the blob, then go away mid-body
    sock.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and s.blob_files() != before:
        time.sleep(0.1)
    nothing_written(s, "docs", before)


def test_malformed_multipart(s: StorageServer) -> None:
    before = s.blob_files()
    body = b'--XX\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nabc'
    r = s.call("service", "POST", "/object/docs/trunc.txt", content=body,
               headers={"content-type": "multipart/form-data; boundary=XX"})  # fmt: skip
    storage_error(r, "400", "InvalidRequest")
    r = s.call("service", "POST", "/object/docs/noboundary.txt", content=b"abc",
               headers={"content-type": "multipart/form-data"})  # fmt: skip
    storage_error(r, "400", "InvalidRequest")
    nothing_written(s, "docs", before)


def test_bad_json_bodies(s: StorageServer) -> None:
    for path in ("/object/list/docs", "/object/move", "/object/copy", "/object/sign/docs",
                 "/object/sign/docs/x.txt"):  # fmt: skip
        r = s.call("service", "POST", path, content=b"{not json",
                   headers={"content-type": "application/json"})  # fmt: skip
        storage_error(r, "400")
        r = s.call("service", "POST", path, json=["an", "array"])
        storage_error(r, "400")
    r = s.call("service", "POST", "/object/list/docs", json={"prefix": "", "limit": "lots"})
    storage_error(r, "400", "InvalidParameter")
    r = s.call(
        "service",
        "POST",
        "/object/list/docs",
        json={"prefix": "", "sortBy": {"column": "name; drop table x", "order": "up"}},
    )
    assert r.status_code == 200  # unknown columns fall back to name, as Supabase's search does
    r = s.call("service", "DELETE", "/object/docs", content=b"[]",
               headers={"content-type": "application/json"})  # fmt: skip
    storage_error(r, "400")


def test_forged_user_token_is_refused(s: StorageServer) -> None:
    import jwt

    forged = jwt.encode({"role": "service_role", "sub": "x"}, "not-the-secret" * 4)
    r = s.call(None, "GET", "/bucket", headers={"Authorization": f"Bearer {forged}"})
    body = storage_error(r, "403", "AccessDenied")
    assert body["message"] == "signature verification failed"
    r = s.call(
        None,
        "POST",
        "/object/docs/x.txt",
        content=b"x",
        headers={"Authorization": f"Bearer {forged}", "content-type": "text/plain"},
    )
    storage_error(r, "403", "AccessDenied")
    assert s.rows("docs") == []
