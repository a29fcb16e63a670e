"""Storage through supabase-js (storage-js), against a live server.

`js/storage.mjs` runs the operations an app makes, as service_role, anon and two users signed
in with passwords, with the folder policy from Supabase's docs on the private bucket: buckets,
upload (Blob as multipart, strings and bytes raw), info/exists/list, update/upsert, move/copy
(within and across buckets), remove, public URLs, signed URLs (one, many, another path
refused), signed upload URLs, size and MIME limits, image transformations.  Each check is one
test here, on both backends: the data folder, and an S3 bucket (moto's server, as the storage
tests use it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.auth.conftest import (
    AuthServer,
    auth_server_factory,  # noqa: F401
)
from tests.compat.conftest import HERE
from tests.storage.conftest import (
    BACKENDS,
    FOLDER_POLICY,
    StorageServer,
    backend_server,
    moto_s3,  # noqa: F401  (the S3 server, for the s3 run)
)

JS_DIR = HERE / "js"
CHECKS = [
    "buckets",
    "sign_in",
    "upload_forms",
    "exists_list_update",
    "move_copy_remove",
    "rls_between_users",
    "public_urls",
    "signed_urls",
    "signed_upload",
    "limits",
    "transform",
]


@pytest.fixture(scope="module", params=BACKENDS)
def js_run(
    request: pytest.FixtureRequest,
    auth_server_factory: Callable[..., AuthServer],  # noqa: F811
) -> Iterator[tuple[StorageServer, dict[str, Any]]]:
    node = shutil.which("node")
    assert node, "node is not installed; the supabase-js suite needs it"
    assert (JS_DIR / "node_modules" / "@supabase" / "supabase-js").is_dir(), (
        "@supabase/supabase-js is not installed: run `make test-deps`"
    )
    s = backend_server(request, auth_server_factory)
    s.auth.script(FOLDER_POLICY)
    env = {
        **s.server.env,
        "SUPABASE_URL": s.url,
        "SUPABASE_ANON_KEY": s.server.anon_key,
        "SUPABASE_SERVICE_ROLE_KEY": s.server.service_key,
        "ALICE_EMAIL": "alice@example.com",
        "BOB_EMAIL": "bob@example.com",
        "USER_PASSWORD": "secret-pw-1",
    }
    proc = subprocess.run(
        [node, "storage.mjs"], cwd=JS_DIR, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"storage.mjs failed:\n{proc.stderr}\n{proc.stdout}"
    out: dict[str, Any] = json.loads(proc.stdout)
    yield s, out
    s.server.stop()  # now, not at the module's end: the other backend's server starts next


@pytest.fixture(scope="module")
def outcomes(js_run: tuple[StorageServer, dict[str, Any]]) -> dict[str, Any]:
    return js_run[1]


def test_bytes_are_in_the_backend(js_run: tuple[StorageServer, dict[str, Any]]) -> None:
    """What the flow left is stored where the backend says, one blob per object, nothing
    else (on S3: in the bucket, none in the data folder)."""
    s, _ = js_run
    [row] = s.auth.sql("select count(*) as n from storage.objects")
    blobs = s.blob_files()
    assert row["n"] > 0 and len(blobs) == row["n"], (row["n"], blobs)
    if s.s3 is not None:
        data = s.server.project / "supabase" / ".supalite" / "storage" / "blobs"
        assert not [p for p in data.rglob("*") if p.is_file()]


def test_suite_is_complete(outcomes: dict[str, Any]) -> None:
    assert list(outcomes) == CHECKS


@pytest.mark.parametrize("name", CHECKS)
def test_storage_js(outcomes: dict[str, Any], name: str) -> None:
    assert name in outcomes, f"storage.mjs did not run {name!r}"
    assert outcomes[name]["ok"], f"{name}: {outcomes[name]['error']}"
