"""The `[cron]` settings: defaults, config.toml, environment, bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from supalite.config import ConfigError, load_settings


def write_toml(root: Path, text: str) -> None:
    (root / "supabase").mkdir(exist_ok=True)
    (root / "supabase" / "config.toml").write_text(text)


def test_defaults(tmp_path: Path) -> None:
    s = load_settings(tmp_path, env={})
    assert s.cron.enabled is True
    assert s.cron.job_timeout == 3600.0


def test_from_config_toml_and_env(tmp_path: Path) -> None:
    write_toml(tmp_path, '[cron]\nenabled = false\njob_timeout = "90s"\n')
    s = load_settings(tmp_path, env={})
    assert (s.cron.enabled, s.cron.job_timeout) == (False, 90.0)
    s = load_settings(
        tmp_path, env={"SUPALITE_CRON_ENABLED": "true", "SUPALITE_CRON_JOB_TIMEOUT": "0"}
    )
    assert (s.cron.enabled, s.cron.job_timeout) == (True, 0.0)


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('[cron]\nenabled = "sometimes"\n', "cron.enabled"),
        ('[cron]\njob_timeout = "forever"\n', "cron.job_timeout"),
        ("[cron]\nschedule = 1\n", "cron.schedule"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, toml: str, key: str) -> None:
    write_toml(tmp_path, toml)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_settings(tmp_path, env={})


def test_bad_env_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SUPALITE_CRON_JOB_TIMEOUT"):
        load_settings(tmp_path, env={"SUPALITE_CRON_JOB_TIMEOUT": "soon"})
