"""Settings read from the environment fail loudly on bad values."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from opsconductor.env import ConfigError, env_bool, env_float, env_int, env_list
from tests.support.processes import REPO_ROOT


def test_env_int_rejects_text_and_out_of_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_WORKERS", "two")
    with pytest.raises(ConfigError, match="X_WORKERS must be an integer"):
        env_int("X_WORKERS", 1)
    monkeypatch.setenv("X_WORKERS", "0")
    with pytest.raises(ConfigError, match=">= 1"):
        env_int("X_WORKERS", 1, minimum=1)
    monkeypatch.setenv("X_WORKERS", "4")
    assert env_int("X_WORKERS", 1, minimum=1) == 4


def test_env_float_enforces_its_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_RECHECK", "6")
    with pytest.raises(ConfigError, match="X_RECHECK must be <= 4"):
        env_float("X_RECHECK", 3.0, minimum=0.05, maximum=4.0)
    monkeypatch.setenv("X_RECHECK", "0.5")
    assert env_float("X_RECHECK", 3.0, minimum=0.05, maximum=4.0) == 0.5


def test_env_bool_accepts_only_known_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ConfigError, match="X_FLAG must be a boolean"):
        env_bool("X_FLAG", False)
    monkeypatch.setenv("X_FLAG", "Yes")
    assert env_bool("X_FLAG", False) is True
    monkeypatch.delenv("X_FLAG")
    assert env_bool("X_FLAG", True) is True


def test_env_list_splits_and_strips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_HOSTS", " a.example , b.example,,")
    assert env_list("X_HOSTS") == ["a.example", "b.example"]


def _import_settings(**env: str) -> subprocess.CompletedProcess[str]:
    child_env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "OPS_DEV", "OPS_TESTING"}}
    child_env.update(env)
    return subprocess.run(
        [sys.executable, "-c", "import opsconductor.settings"],
        cwd=REPO_ROOT,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_secret_key_is_required_outside_development_mode() -> None:
    result = _import_settings(OPS_DEV="false", DATABASE_URL="postgres://u@127.0.0.1:1/x")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
    ok = _import_settings(OPS_DEV="false", SECRET_KEY="s" * 50, DATABASE_URL="postgres://u@127.0.0.1:1/x")
    assert ok.returncode == 0, ok.stderr


def test_a_non_postgres_database_url_is_refused() -> None:
    result = _import_settings(DATABASE_URL="sqlite:///tmp/x.db")
    assert result.returncode != 0
    assert "DATABASE_URL must point at PostgreSQL" in result.stderr


def test_bad_worker_count_stops_the_process() -> None:
    result = _import_settings(OPS_WORKERS="lots", DATABASE_URL="postgres://u@127.0.0.1:1/x")
    assert result.returncode != 0
    assert "OPS_WORKERS must be an integer" in result.stderr
