"""RLS decides every operation, as on Supabase: the folder policy from Supabase's docs
(`(storage.foldername(name))[1] = auth.uid()::text`) applied as written, exercised by anon,
two signed-in users and service_role, on every operation."""

from __future__ import annotations

import os

import pytest

from tests.storage.conftest import FOLDER_POLICY, StorageServer, storage_error


@pytest.fixture(scope="module")
def s(storage: StorageServer) -> StorageServer:
    r = storage.call("service", "POST", "/bucket", json={"name": "private"})
    assert r.status_code == 200, r.text
    storage.auth.script(FOLDER_POLICY)
    return storage


def path(s: StorageServer, who: str, name: str) -> str:
    return f"{s[who].uid}/{name}"


def test_users_write_only_under_their_folder(s: StorageServer) -> None:
    a = path(s, "alice", "a.txt")
    r = s.upload("alice", "private", a, b"alice's")
    assert r.status_code == 200, r.text
    row = s.auth.sql("select owner, owner_id from storage.objects where name = $1", a)[0]
    assert str(row["owner"]) == row["owner_id"] == s["alice"].uid
    # Into bob's folder, or the bucket root: refused, and nothing is stored.
    files = len(s.blob_files())
    for target in (path(s, "bob", "evil.txt"), "root.txt"):
        body = storage_error(s.upload("alice", "private", target, b"x"), "403", "AccessDenied")
        assert body["message"] == "new row violates row-level security policy"
        assert target not in s.rows("private")
    # Anon has no policy at all.
    storage_error(s.upload("anon", "private", path(s, "alice", "anon.txt")), "403", "AccessDenied")
    assert len(s.blob_files()) == files


def test_reads_follow_the_policy(s: StorageServer) -> None:
    a = path(s, "alice", "read.txt")
    assert s.upload("alice", "private", a, b"mine").status_code == 200
    assert s.download("alice", "private", a).content == b"mine"
    for who in ("bob", "anon"):
        storage_error(s.download(who, "private", a), "404", "NoSuchKey")
        storage_error(s.call(who, "GET", f"/object/info/private/{a}"), "404", "NoSuchKey")
        r = s.call(who, "POST", "/object/list/private", json={"prefix": s["alice"].uid})
        assert r.json() == []
        r = s.call(who, "POST", f"/object/sign/private/{a}", json={"expiresIn": 60})
        storage_error(r, "404", "NoSuchKey")
    listed = s.call("alice", "POST", "/object/list/private", json={"prefix": s["alice"].uid})
    assert "read.txt" in [e["name"] for e in listed.json()]
    # At the root, alice sees her folder and not bob's.
    assert s.upload("bob", "private", path(s, "bob", "b.txt"), b"bob's").status_code == 200
    root = [e["name"] for e in s.call("alice", "POST", "/object/list/private",
                                      json={"prefix": ""}).json()]  # fmt: skip
    assert root == [s["alice"].uid]
    # service_role bypasses RLS.
    assert s.download("service", "private", a).content == b"mine"
    everything = s.call("service", "POST", "/object/list/private", json={"prefix": ""}).json()
    assert {e["name"] for e in everything} == {s["alice"].uid, s["bob"].uid}


def test_upsert_update_move_copy_remove_follow_the_policy(s: StorageServer) -> None:
    a = path(s, "alice", "doc.txt")
    b_path = path(s, "bob", "doc.txt")
    assert s.upload("alice", "private", a, b"v1").status_code == 200
    assert s.upload("alice", "private", a, b"v2", x_upsert="true").status_code == 200
    assert s.upload("alice", "private", a, b"v3", method="PUT").status_code == 200
    assert s.download("alice", "private", a).content == b"v3"
    # Bob can neither overwrite nor see alice's file.
    storage_error(s.upload("bob", "private", a, b"bob", method="PUT"), "403", "AccessDenied")
    storage_error(s.upload("bob", "private", a, b"bob", x_upsert="true"), "403")
    assert s.download("alice", "private", a).content == b"v3"
    # Move within her folder: fine; out of it (into bob's): refused, nothing moved.
    r = s.call("alice", "POST", "/object/move",
               json={"bucketId": "private", "sourceKey": a,
                     "destinationKey": path(s, "alice", "renamed.txt")})  # fmt: skip
    assert r.status_code == 200, r.text
    a = path(s, "alice", "renamed.txt")
    r = s.call(
        "alice",
        "POST",
        "/object/move",
        json={"bucketId": "private", "sourceKey": a, "destinationKey": b_path},
    )
    storage_error(r, "403", "AccessDenied")
    r = s.call(
        "bob",
        "POST",
        "/object/move",
        json={"bucketId": "private", "sourceKey": a, "destinationKey": b_path},
    )
    storage_error(r, "404", "NoSuchKey")
    assert a in s.rows("private")
    # Copy: bob cannot read the source; alice cannot write into bob's folder.
    r = s.call(
        "bob",
        "POST",
        "/object/copy",
        json={"bucketId": "private", "sourceKey": a, "destinationKey": b_path},
    )
    storage_error(r, "404", "NoSuchKey")
    files = len(s.blob_files())
    r = s.call(
        "alice",
        "POST",
        "/object/copy",
        json={"bucketId": "private", "sourceKey": a, "destinationKey": b_path},
    )
    storage_error(r, "403", "AccessDenied")
    assert len(s.blob_files()) == files
    r = s.call("alice", "POST", "/object/copy",
               json={"bucketId": "private", "sourceKey": a,
                     "destinationKey": path(s, "alice", "copy.txt")})  # fmt: skip
    assert r.status_code == 200, r.text
    # Remove: bob's attempt deletes nothing; alice's works.
    r = s.call("bob", "DELETE", "/object/private", json={"prefixes": [a]})
    assert r.status_code == 200 and r.json() == []
    storage_error(s.call("bob", "DELETE", f"/object/private/{a}"), "403", "AccessDenied")
    storage_error(s.call("anon", "DELETE", f"/object/private/{a}"), "403", "AccessDenied")
    assert a in s.rows("private")
    r = s.call("alice", "DELETE", "/object/private", json={"prefixes": [a]})
    assert [o["name"] for o in r.json()] == [a]
    assert a not in s.rows("private")


def test_empty_bucket_as_a_user_deletes_only_what_the_policy_allows(s: StorageServer) -> None:
    assert s.upload("bob", "private", path(s, "bob", "keep.txt"), b"x").status_code == 200
    assert s.upload("alice", "private", path(s, "alice", "go.txt"), b"x").status_code == 200
    r = s.call("alice", "POST", "/bucket/private/empty")
    assert r.status_code == 200, r.text
    names = s.rows("private")
    assert path(s, "bob", "keep.txt") in names
    assert not [n for n in names if n.startswith(s["alice"].uid)]


def test_policy_on_metadata(s: StorageServer) -> None:
    """Policies may read the row's metadata, as Supabase's docs show for MIME checks."""
    r = s.call("service", "POST", "/bucket", json={"name": "images-only"})
    assert r.status_code == 200
    s.auth.script(
        """
        create policy "images only" on storage.objects for insert to authenticated
          with check (bucket_id = 'images-only'
                      and storage.extension(name) = 'png'
                      and metadata->>'mimetype' like 'image/%');
        """
    )
    assert s.upload("alice", "images-only", "ok.png", b"x", "image/png").status_code == 200
    storage_error(s.upload("alice", "images-only", "no.txt", b"x", "image/png"), "403")
    storage_error(s.upload("alice", "images-only", "no.png", b"x", "text/plain"), "403")
    assert s.rows("images-only") == ["ok.png"]


def test_refused_uploads_of_any_size_leave_nothing(s: StorageServer) -> None:
    """A body up to 1 MiB is stored before the commit's checks refuse it; a larger one is
    checked before a byte is read.  Either way: the same answer, no blob, no registry entry."""

    def registry() -> int:
        n: int = s.auth.sql("select count(*) as n from _supalite.storage_blobs")[0]["n"]
        return n

    files, registered = len(s.blob_files()), registry()
    for size in (10, 1024 * 1024, 1024 * 1024 + 1, 3 * 1024 * 1024):
        target = path(s, "bob", f"refused-{size}.bin")
        r = s.upload("alice", "private", target, os.urandom(size), "application/octet-stream")
        body = storage_error(r, "403", "AccessDenied")
        assert body["message"] == "new row violates row-level security policy"
        assert target not in s.rows("private")
    assert len(s.blob_files()) == files and registry() == registered
    # And an accepted one of each kind is stored whole.
    for size in (1024 * 1024, 3 * 1024 * 1024):
        data = os.urandom(size)
        mine = path(s, "alice", f"ok-{size}.bin")
        r = s.upload("alice", "private", mine, data, "application/octet-stream")
        assert r.status_code == 200, r.text
        assert s.download("alice", "private", mine).content == data
    assert len(s.blob_files()) == files + 2 and registry() == registered + 2
