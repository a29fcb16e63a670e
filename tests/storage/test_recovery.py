"""Blobs whose row never committed (a crash between bytes and row) or was deleted with plain
SQL are found through supalite's blob registry and removed at the next start; blobs that
objects name are kept."""

from __future__ import annotations

from tests.helpers import LiveServer
from tests.storage.conftest import StorageServer


def test_orphans_are_swept_at_start(storage: StorageServer) -> None:
    s = storage
    assert s.call("service", "POST", "/bucket", json={"name": "rec"}).status_code == 200
    for name in ("keep.txt", "lost.txt", "young.txt"):
        assert s.upload("service", "rec", name, name.encode()).status_code == 200
    registry = s.auth.sql("select count(*) as n from _supalite.storage_blobs")[0]["n"]
    assert registry == len(s.blob_files())
    version = {
        r["name"]: r["version"]
        for r in s.auth.sql("select name, version from storage.objects where bucket_id = 'rec'")
    }
    # Rows gone behind Storage's back (or never committed): their blobs are orphans.
    s.auth.sql("delete from storage.objects where name in ('lost.txt', 'young.txt')")
    # Only orphans past the grace period go: lost.txt's blob is old, young.txt's recent.
    s.auth.sql(
        "update _supalite.storage_blobs set created_at = now() - interval '2 days'"
        " where version = $1",
        version["lost.txt"],
    )
    before = len(s.blob_files())
    s.server.stop()
    restarted = LiveServer(s.server.project).start()
    s.auth.server = restarted
    try:
        # lost.txt's blob (old, unnamed) is gone; young.txt's (recent) and keep.txt's stay.
        assert len(s.blob_files()) == before - 1
        assert s.download("service", "rec", "keep.txt").content == b"keep.txt"
        kept = {r["version"] for r in s.auth.sql("select version from _supalite.storage_blobs")}
        assert version["lost.txt"] not in kept
        assert {version["keep.txt"], version["young.txt"]} <= kept
    finally:
        restarted.stop()  # the module's fixture stops only the server it started
