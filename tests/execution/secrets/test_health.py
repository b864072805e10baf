"""Secret backend health: each configured backend is checked, the others say "not configured"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from execution.secrets.health import secrets_backends_check
from tests.support.processes import free_port


def test_aws_configured_with_an_endpoint_nobody_answers_is_not_ok(settings: Any) -> None:
    settings.AWS_SECRETS_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens
    report = secrets_backends_check()["aws"]
    assert report["ok"] is False and "unreachable" in report["detail"], report


def test_aws_without_endpoint_or_credentials_is_not_configured(
    settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings.AWS_SECRETS_ENDPOINT_URL = None
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert secrets_backends_check()["aws"] == {"ok": True, "detail": "not configured"}


def test_the_file_backend_checks_its_directory(settings: Any, tmp_path: Path) -> None:
    settings.SECRETS_FILE_DIR = str(tmp_path / "absent")
    assert secrets_backends_check()["file"]["detail"].startswith("not configured")
    not_a_dir = tmp_path / "plain"
    not_a_dir.write_text("x")
    settings.SECRETS_FILE_DIR = str(not_a_dir)
    assert secrets_backends_check()["file"]["ok"] is False
    settings.SECRETS_FILE_DIR = str(tmp_path)
    assert secrets_backends_check()["file"] == {"ok": True, "detail": f"{tmp_path} readable"}


@pytest.mark.django_db
def test_go_no_go_names_what_each_backend_is_instead_of_calling_all_reachable(settings: Any) -> None:
    from monitoring.services.release import check_secret_backends

    settings.VAULT_ADDR = None
    result = check_secret_backends()
    assert result.ok and "reachable" not in result.detail.replace("unreachable", "")
    assert "vault: not configured" in result.detail
