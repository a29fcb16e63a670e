"""Which functions exist and how they are configured (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from supalite.config import ConfigError, load_settings
from supalite.functions.registry import Registry, read_env_file


def _project(tmp_path: Path, config: str) -> Path:
    (tmp_path / "supabase" / "functions").mkdir(parents=True)
    (tmp_path / "supabase" / "config.toml").write_text(config)
    return tmp_path


def test_per_function_settings_from_config_toml(tmp_path: Path) -> None:
    config = (
        "[functions.open]\nverify_jwt = false\n"
        "[functions.off]\nenabled = false\n"
        '[functions.ts]\nimport_map = "./functions/ts/deno.json"\n'
    )
    project = _project(tmp_path, config)
    settings = load_settings(project, env={})
    fns = settings.supabase_dir / "functions"
    for name, entry in (("open", "main.py"), ("off", "main.py"), ("closed", "main.py"),
                        ("ts", "index.ts"), ("both", "main.py"), ("both", "index.ts")):  # fmt: skip
        (fns / name).mkdir(exist_ok=True)
        (fns / name / entry).write_text("")
    (fns / "_shared").mkdir()
    (fns / "_shared" / "main.py").write_text("")
    (fns / "empty").mkdir()
    registry = Registry(settings.supabase_dir, settings.functions.per_function)
    open_, closed, ts, both = (registry.get(n) for n in ("open", "closed", "ts", "both"))
    assert open_ is not None and open_.verify_jwt is False and open_.lang == "python"
    assert closed is not None and closed.verify_jwt is True  # the default, as the CLI's
    assert ts is not None and ts.lang == "typescript" and ts.verify_jwt is True
    assert both is not None and both.lang == "python"  # main.py wins over index.ts
    assert registry.get("off") is None
    assert registry.get("_shared") is None  # not a slug: shared code, as on Supabase
    assert registry.get("empty") is None
    assert registry.get("../functions/open") is None
    assert registry.names() == ["both", "closed", "open", "ts"]


def test_unknown_keys_in_a_function_table_are_refused(tmp_path: Path) -> None:
    project = _project(tmp_path, "[functions.x]\nverify_jwt = false\nverfy = true\n")
    with pytest.raises(ConfigError, match="unknown key 'verfy'"):
        load_settings(project, env={})


def test_limits_from_the_environment(tmp_path: Path) -> None:
    settings = load_settings(_project(tmp_path, ""), env={
        "SUPALITE_FUNCTIONS_WALL_TIME": "2m", "SUPALITE_FUNCTIONS_MEMORY_LIMIT": "64MiB",
        "SUPALITE_FUNCTIONS_WORKERS": "3",
    })  # fmt: skip
    assert settings.functions.wall_time == 120
    assert settings.functions.memory_limit == 64 * 1024 * 1024
    assert settings.functions.workers == 3
    with pytest.raises(ConfigError, match="SUPALITE_FUNCTIONS_WORKERS"):
        load_settings(tmp_path, env={"SUPALITE_FUNCTIONS_WORKERS": "0"})


def test_dotenv_parsing(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(
        "# comment\n\nA=1\nexport B = two  # trailing comment\nC=\"x y\\nz\"\nD='$raw'\n"
        "SUPABASE_URL=http://nope\nnot a line\n"
    )
    assert read_env_file(path) == {"A": "1", "B": "two", "C": "x y\nz", "D": "$raw"}
    assert read_env_file(tmp_path / "missing") == {}
