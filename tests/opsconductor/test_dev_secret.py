"""Development mode's SECRET_KEY is random per state directory and DEBUG is off unless asked:
a key in the source signs anybody's session cookie on a development server reached over a
network, and the debug page of a 500 shows code and settings to whoever gets one."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from opsconductor.dev_secret import dev_secret_key

ROOT = Path(__file__).resolve().parents[2]
PROBE = "from django.conf import settings; print(settings.SECRET_KEY); print(settings.DEBUG)"


def _settings_in_a_fresh_process(state: Path) -> tuple[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DEBUG", "OPS_DEV", "PYTEST_CURRENT_TEST"}
    }
    # A DATABASE_URL nobody connects to: the probe reads settings only, and without one the
    # settings would start an embedded PostgreSQL in ``state`` that outlives the test.
    env.update(
        OPS_STATE_DIR=str(state),
        DJANGO_SETTINGS_MODULE="opsconductor.settings",
        DATABASE_URL="postgres://probe@127.0.0.1:9/unused",
    )
    out = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {PROBE}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    return out[0], out[1]


def test_each_state_directory_gets_its_own_key_kept_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPS_STATE_DIR", str(tmp_path / "one"))
    first = dev_secret_key()
    assert dev_secret_key() == first and len(first) >= 50
    assert stat.S_IMODE((tmp_path / "one" / "secret_key").stat().st_mode) == 0o600
    assert not list((tmp_path / "one").glob(".secret_key.*"))  # no temporary file left behind
    monkeypatch.setenv("OPS_STATE_DIR", str(tmp_path / "two"))
    assert dev_secret_key() != first


def test_a_development_server_has_a_random_key_and_debug_off(tmp_path: Path) -> None:
    key, debug = _settings_in_a_fresh_process(tmp_path)
    assert "dev-insecure" not in key and key == (tmp_path / "secret_key").read_text().strip()
    assert debug == "False"
    again, _ = _settings_in_a_fresh_process(tmp_path)
    assert again == key  # web, workers and a restart share it
