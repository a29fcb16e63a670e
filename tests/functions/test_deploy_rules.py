"""The deploy rules on their own (no server): paths, entrypoints, digests, secret names."""

from __future__ import annotations

import pytest

from supalite.functions import secrets
from supalite.functions.deploy import AdminError, clean_path, files_digest, parse_deployment


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("index.ts", "index.ts"),
        ("./index.ts", "index.ts"),
        ("lib//a.ts", "lib/a.ts"),
        ("lib/../b.ts", "b.ts"),
        ("../_shared/cors.ts", "../_shared/cors.ts"),
        ("../fn/../_shared/x.ts", "../_shared/x.ts"),
        ("a b/ü.py", "a b/ü.py"),
    ],
)
def test_paths_are_normalised_within_the_version(given: str, stored: str) -> None:
    assert clean_path("fn", given) == stored


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/abs.ts",
        "C:/x.ts",
        "../../x.ts",
        "../..",
        "..",
        "a/../../..",
        "x/",
        ".",
        "a\\b",
        "a\nb",
        "a\x00b",
        "x" * 513,
        7,
        None,
    ],
)
def test_paths_that_are_refused(path: object) -> None:
    with pytest.raises(AdminError) as e:
        clean_path("fn", path)
    assert e.value.status == 400


def test_the_default_entrypoint_follows_the_folder_rule() -> None:
    both = {"files": {"main.py": "", "index.ts": ""}}
    assert parse_deployment("f", both).entrypoint == "main.py"  # as registry.Registry.get
    assert parse_deployment("f", {"files": {"index.js": ""}}).entrypoint == "index.js"
    d = parse_deployment(None, {"name": "from-body", "files": {"index.ts": ""}})
    assert d.slug == "from-body" and d.verify_jwt is True


def test_the_digest_covers_names_and_contents() -> None:
    base = files_digest({"a": "1", "b": "2"})
    assert base == files_digest({"b": "2", "a": "1"})  # order does not matter
    assert base != files_digest({"a": "12", "b": ""})  # boundaries between parts do
    assert base != files_digest({"a": "1", "c": "2"})


def test_secrets_are_sealed_and_opened_with_the_derived_key() -> None:
    one, two = secrets.cipher("secret-one"), secrets.cipher("secret-two")
    sealed = one.seal("value")
    assert "value" not in sealed and sealed != one.seal("value")  # a fresh nonce each time
    assert one.open(sealed) == "value"
    with pytest.raises(Exception, match="cannot decrypt"):
        two.open(sealed)  # another JWT secret cannot read it
