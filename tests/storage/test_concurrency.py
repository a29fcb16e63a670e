"""Concurrent overwrites and reads of one object: every read gets a whole version (never an
error, never a mix), and when the writers are done exactly one blob is left for it."""

from __future__ import annotations

import threading

import httpx

from tests.storage.conftest import StorageServer


def test_overwrites_while_reading(storage: StorageServer) -> None:
    s = storage
    assert s.call("service", "POST", "/bucket", json={"name": "hot"}).status_code == 200
    before = len(s.blob_files())
    versions = {bytes([65 + i]) * 8192 for i in range(16)}
    errors: list[str] = []
    seen: set[bytes] = set()
    headers = {**s["service"].headers(), "x-upsert": "true", "content-type": "text/plain"}

    def writer(body: bytes) -> None:
        with httpx.Client(base_url=s.url, timeout=60) as c:
            for _ in range(10):
                r = c.post("/storage/v1/object/hot/k", content=body, headers=headers)
                if r.status_code != 200:
                    errors.append(r.text)

    def reader() -> None:
        with httpx.Client(base_url=s.url, timeout=60) as c:
            for _ in range(60):
                r = c.get("/storage/v1/object/authenticated/hot/k",
                          headers=s["service"].headers())  # fmt: skip
                if r.status_code == 200:
                    seen.add(r.content)
                elif r.json().get("code") != "NoSuchKey" or seen:
                    errors.append(r.text)  # missing is fine only before the first write

    threads = [threading.Thread(target=writer, args=(v,)) for v in versions]
    threads += [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert seen <= versions and seen
    assert s.rows("hot") == ["k"]
    assert len(s.blob_files()) == before + 1
