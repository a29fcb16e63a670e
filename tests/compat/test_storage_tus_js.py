"""TUS resumable uploads through the real `tus-js-client` (npm), against a live server, with
the options of Supabase's docs (`/storage/v1/upload/resumable`, `authorization` and `x-upsert`
headers, `uploadDataDuringCreation`, `removeFingerprintOnSuccess`, 6 MB chunks, metadata
`bucketName`/`objectName`/`contentType`/`cacheControl`).

`js/tus.mjs` signs a user in with supabase-js and, with the folder policy from Supabase's docs
on the private bucket, uploads a file of more than two chunks; aborts a second upload after its
first chunk and resumes it with a new Upload on the same URL (HEAD, then PATCH from the
server's offset); sees RLS and `x-upsert: false` refusals as tus-js-client reports them; and
does the same through a signed upload URL as Supabase's docs show it (`createSignedUploadUrl`,
then `/upload/resumable/sign` with the token in `x-signature` and no authorization header): an
upload aborted after one chunk and resumed, and the refusals of a token for another object, a
forged token and none.  Each check is one test here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from tests.auth.conftest import (
    AuthServer,
    auth_server_factory,  # noqa: F401
)
from tests.compat.conftest import HERE
from tests.storage.conftest import FOLDER_POLICY, make_storage_server

JS_DIR = HERE / "js"
CHECKS = [
    "upload_in_chunks",
    "resume_after_abort",
    "rls_refused",
    "upsert_conflict",
    "signed_resume_after_abort",
    "signed_refused",
]


def bigger_limit(text: str) -> str:
    # The storage tests' global limit is 5 MiB; Supabase's chunks are 6 MB, and the file here
    # spans three of them.
    return text.replace('file_size_limit = "5MiB"', 'file_size_limit = "50MiB"')


@pytest.fixture(scope="module")
def outcomes(auth_server_factory: Callable[..., AuthServer]) -> dict[str, Any]:  # noqa: F811
    node = shutil.which("node")
    assert node, "node is not installed; the tus-js-client suite needs it"
    assert (JS_DIR / "node_modules" / "tus-js-client").is_dir(), (
        "tus-js-client is not installed: run `make test-deps`"
    )

    def factory(edit: Callable[[str], str]) -> AuthServer:
        return auth_server_factory(lambda text: bigger_limit(edit(text)))

    s = make_storage_server(factory)
    s.auth.script(FOLDER_POLICY)
    r = s.call("service", "POST", "/bucket", json={"name": "private"})
    assert r.status_code == 200, r.text
    env = {
        **s.server.env,
        "SUPABASE_URL": s.url,
        "SUPABASE_ANON_KEY": s.server.anon_key,
        "ALICE_EMAIL": "alice@example.com",
        "USER_PASSWORD": "secret-pw-1",
    }
    proc = subprocess.run(
        [node, "tus.mjs"], cwd=JS_DIR, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"tus.mjs failed:\n{proc.stderr}\n{proc.stdout}"
    out: dict[str, Any] = json.loads(proc.stdout)
    # Nothing unfinished is left: the aborted upload was resumed to its end.
    left = s.auth.sql("select id from _supalite.storage_tus_uploads where not done")
    out["_unfinished"] = [r["id"] for r in left]
    # Whoever signed the upload URL owns what was uploaded through it (alice, as on Supabase).
    owners = s.auth.sql(
        "select owner_id from storage.objects where bucket_id = 'private' and name = $1",
        f"{s['alice'].uid}/signed.bin",
    )
    out["_signed_owner"] = [r["owner_id"] for r in owners]
    out["_alice"] = s["alice"].uid
    return out


def test_suite_is_complete(outcomes: dict[str, Any]) -> None:
    assert [k for k in outcomes if not k.startswith("_")] == CHECKS


def test_signed_upload_is_owned_by_the_signer(outcomes: dict[str, Any]) -> None:
    assert outcomes["_signed_owner"] == [outcomes["_alice"]]


def test_nothing_unfinished_left(outcomes: dict[str, Any]) -> None:
    assert outcomes["_unfinished"] == []


@pytest.mark.parametrize("name", CHECKS)
def test_tus_js(outcomes: dict[str, Any], name: str) -> None:
    assert name in outcomes, f"tus.mjs did not run {name!r}"
    assert outcomes[name]["ok"], f"{name}: {outcomes[name]['error']}"
