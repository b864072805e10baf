"""Secret backend health (docs/contract.md#truth, "Checks check"): each backend is ok, not
configured (never called reachable) or failing (configured, and it cannot serve), and
``go_no_go`` fails on a failing one only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from execution.secrets.health import secrets_backends_check
from tests.support.httpserver import LoopbackHttpServer, json_answer
from tests.support.processes import free_port


def _state(name: str) -> str:
    return secrets_backends_check()[name]["state"]


def test_aws_configured_with_an_endpoint_nobody_answers_fails(settings: Any) -> None:
    settings.AWS_SECRETS_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens
    report = secrets_backends_check()["aws"]
    assert report["state"] == "failing" and "unreachable" in report["detail"], report


def test_aws_without_endpoint_or_credentials_is_not_configured(
    settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings.AWS_SECRETS_ENDPOINT_URL = None
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert _state("aws") == "not configured"


def test_the_file_backend_default_directory_counts_only_once_it_exists(settings: Any, tmp_path: Path) -> None:
    settings.SECRETS_FILE_DIR_DEFAULT = settings.SECRETS_FILE_DIR = str(tmp_path / "absent")
    assert secrets_backends_check()["file"] == {
        "state": "not configured",
        "detail": f"no directory {tmp_path}/absent",
    }
    (tmp_path / "absent").mkdir()
    assert _state("file") == "ok"


def test_a_file_directory_named_explicitly_must_be_there_and_readable(settings: Any, tmp_path: Path) -> None:
    settings.SECRETS_FILE_DIR = str(tmp_path / "absent")  # a typo in SECRETS_FILE_DIR
    report = secrets_backends_check()["file"]
    assert report["state"] == "failing" and "does not exist" in report["detail"], report
    not_a_dir = tmp_path / "plain"
    not_a_dir.write_text("x")
    settings.SECRETS_FILE_DIR = str(not_a_dir)
    assert _state("file") == "failing"
    settings.SECRETS_FILE_DIR = str(tmp_path)
    assert secrets_backends_check()["file"] == {"state": "ok", "detail": f"{tmp_path} readable"}


def _vault(token: str) -> Any:
    def respond(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        if path.startswith("/v1/auth/token/lookup-self") and headers.get("X-Vault-Token") == token:
            return json_answer(200, {"data": {"id": token, "policies": ["default"]}})
        return json_answer(403, {"errors": ["permission denied"]})

    return respond


def test_vault_is_not_configured_ok_or_failing(settings: Any) -> None:
    settings.VAULT_ADDR = None
    assert _state("vault") == "not configured"
    with LoopbackHttpServer(_vault("s.good")) as server:
        settings.VAULT_ADDR, settings.VAULT_TOKEN = server.url, "s.good"
        assert _state("vault") == "ok"
        settings.VAULT_TOKEN = "s.revoked"
        assert secrets_backends_check()["vault"] == {
            "state": "failing",
            "detail": f"{server.url}: token refused",
        }
    settings.VAULT_ADDR = f"http://127.0.0.1:{free_port()}"  # configured, nobody answers
    report = secrets_backends_check()["vault"]
    assert report["state"] == "failing" and "unreachable" in report["detail"], report


@pytest.mark.django_db
def test_go_no_go_fails_on_a_failing_backend_and_names_the_unconfigured_ones(
    settings: Any, tmp_path: Path
) -> None:
    from monitoring.services.release import check_secret_backends

    settings.VAULT_ADDR = None
    settings.SECRETS_FILE_DIR_DEFAULT = settings.SECRETS_FILE_DIR = str(tmp_path / "absent")
    result = check_secret_backends()
    assert result.ok and "vault: not configured" in result.detail and "file: not configured" in result.detail
    assert "env: ok" in result.detail and "db: ok" in result.detail
    settings.VAULT_ADDR, settings.VAULT_TOKEN = f"http://127.0.0.1:{free_port()}", "s.token"
    result = check_secret_backends()
    assert not result.ok and result.detail.startswith("vault: ") and "unreachable" in result.detail
