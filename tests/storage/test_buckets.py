"""Buckets over HTTP: create/get/list/update/empty/delete, the configured buckets, limits and
names, and RLS on storage.buckets (no policy: only service_role may manage buckets)."""

from __future__ import annotations

import pytest

from tests.storage.conftest import StorageServer, storage_error


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
