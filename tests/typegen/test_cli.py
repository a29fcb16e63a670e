"""`supalite gen types`: the project's database by default, or --db-url; types on stdout only."""

from __future__ import annotations

from pathlib import Path

from pytest import TempPathFactory

from tests.helpers import free_port, supalite
from tests.mcp.conftest import Project, start_project
from tests.typegen.conftest import generate_direct


def test_default_is_public_and_the_api_schemas(project: Project) -> None:
    r = supalite("gen", "types", cwd=project.root)
    assert r.returncode == 0, r.stderr
    # As the Supabase CLI: public plus config.toml's [api] schemas (public, graphql_public).
    assert r.stdout == generate_direct(project.db_url, "typescript", ["public", "graphql_public"])
    assert "\n  graphql_public: {\n" in r.stdout and "\n  public: {\n" in r.stdout
    assert "\n  other: {\n" not in r.stdout and "_supalite" not in r.stdout


def test_languages_and_schemas(project: Project, ts_source: str, py_source: str) -> None:
    r = supalite("gen", "types", "--lang", "python", "-s", "public", "--schema", "other",
                 cwd=project.root)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout == py_source
    r = supalite("gen", "types", "--lang", "typescript", "--schema", "other,public",
                 cwd=project.root)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout == ts_source


def test_db_url_needs_no_project(project: Project, ts_source: str, tmp_path: Path) -> None:
    r = supalite("gen", "types", "--db-url", project.db_url, "-s", "public,other", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ts_source
    assert not (tmp_path / "supabase").exists()


def test_bad_input_is_a_clear_error(project: Project, tmp_path: Path) -> None:
    r = supalite("gen", "types", "-s", "public,nope", cwd=project.root)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr.strip() == "supalite: schema 'nope' does not exist"
    r = supalite("gen", "types", "--db-url", f"postgresql://postgres@127.0.0.1:{free_port()}/x",
                 cwd=tmp_path)  # fmt: skip
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr.startswith("supalite: cannot connect to the database:"), r.stderr
    r = supalite("gen", "types", "--lang", "go", cwd=project.root)
    assert r.returncode == 2 and "invalid choice: 'go'" in r.stderr


def test_a_stopped_project_is_started_for_the_command(tmp_path_factory: TempPathFactory) -> None:
    """As `db dump`: the project's own database, started for the command and stopped after."""
    p = start_project(tmp_path_factory.mktemp("stopped"))
    try:
        p.script("create table public.notes (id int generated always as identity primary key);")
    finally:
        p.server.stop()
    r = supalite("gen", "types", cwd=p.root, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("export type Json =")
    assert "      notes: {\n" in r.stdout and "          id?: never\n" in r.stdout
    assert supalite("status", cwd=p.root).returncode != 0  # and left stopped
