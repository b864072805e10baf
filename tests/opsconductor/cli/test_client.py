"""The opsctl client and configuration without a product: a loopback HTTP server plays the
server's answers (503s, pages), so each rule is checked on what really goes over the wire."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from opsconductor.cli.client import ApiError, ConnectionFailed, OpsClient, retry_after_seconds
from opsconductor.cli.config import ConfigProblem, settings_resolve
from opsconductor.cli.main import main
from tests.support.httpserver import LoopbackHttpServer, json_answer
from tests.support.processes import REPO_ROOT, free_port


def test_the_cli_imports_nothing_from_django() -> None:
    code = (
        "import sys, opsconductor.cli.main, opsconductor.cli.client; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'execution', 'rest_framework')); "
        "print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True
    )
    assert out.stdout.strip() == "[]"


def test_a_503_is_retried_after_retry_after_with_the_same_idempotency_key() -> None:
    answers = iter([(503, {"Retry-After": "1"}, b'{"detail": "database unavailable"}')])

    def responder(
        method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        return next(answers, None) or json_answer(202, {"execution_id": "e-1", "status": "queued"})

    with LoopbackHttpServer(responder) as server:
        slept: list[float] = []
        client = OpsClient(server.url, "tok", sleep=slept.append)
        submitted = client.submit({"tenant": "t"}, idempotency_key="change-1")
    assert submitted.status_code == 202 and submitted.execution_id == "e-1"
    assert slept == [1.0]
    assert [r["headers"]["Idempotency-Key"] for r in server.requests] == ["change-1", "change-1"]
    assert all(r["headers"]["Authorization"] == "Token tok" for r in server.requests)


def test_retry_after_as_seconds_or_http_date() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert retry_after_seconds(None, default=2.0) == 2.0
    assert retry_after_seconds("soon", default=3.0) == 3.0


def test_a_503_past_the_retries_is_an_error_with_the_servers_reason() -> None:
    with LoopbackHttpServer(lambda *a: json_answer(503, {"detail": "database unavailable"})) as server:
        client = OpsClient(server.url, "tok", retries=2, max_retry_wait=0)
        with pytest.raises(ApiError) as raised:
            client.execution("x")
    assert raised.value.status == 503 and str(raised.value) == "503: database unavailable"
    assert len(server.requests) == 3


def test_pages_are_followed_to_the_last() -> None:
    def responder(
        method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if "offset=2" in path:
            return json_answer(200, {"count": 3, "next": None, "results": [{"execution_id": "c"}]})
        nxt = f"{server.url}/api/v1/executions/?limit=2&offset=2&status=failed"
        return json_answer(
            200, {"count": 3, "next": nxt, "results": [{"execution_id": "a"}, {"execution_id": "b"}]}
        )

    with LoopbackHttpServer(responder) as server:
        ids = [e["execution_id"] for e in OpsClient(server.url, "tok").executions(status="failed", tag=None)]
    assert ids == ["a", "b", "c"]
    assert server.requests[0]["path"] == "/api/v1/executions/?status=failed"


def test_a_field_error_is_one_line_with_its_path(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    body = {"detail": "invalid submission", "errors": [{"path": "plan.steps[0].type", "message": "unknown"}]}
    plan = tmp_path / "p.json"
    plan.write_text("{}")
    with LoopbackHttpServer(lambda *a: json_answer(400, body)) as server:
        code = main(["--url", server.url, "--token", "t", "submit", str(plan)])
    assert code == 2
    assert capsys.readouterr().err == "opsctl: 400 invalid submission: plan.steps[0].type: unknown\n"


def test_an_unreachable_server_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["--url", url, "--token", "t", "get", "x"]) == 2
    assert capsys.readouterr().err == f"opsctl: cannot reach {url}: ConnectionError\n"


def test_usage_errors_are_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["submit"])
    assert raised.value.code == 2
    (tmp_path / "not.json").write_text("{nope")
    assert main(["--url", "http://127.0.0.1:9", "--token", "t", "submit", str(tmp_path / "not.json")]) == 2
    assert "not JSON" in capsys.readouterr().err
    with pytest.raises(ConnectionFailed):
        OpsClient("http://127.0.0.1:9", "t", retries=0).execution("x")


def test_config_file_must_be_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPSCTL_URL", raising=False)
    monkeypatch.delenv("OPSCTL_TOKEN", raising=False)
    config = tmp_path / "config.toml"
    config.write_text('url = "http://ops.example:8000"\ntoken = "secret-token"\n')
    os.chmod(config, 0o644)
    with pytest.raises(ConfigProblem) as refused:
        settings_resolve(url=None, token=None, config=str(config))
    assert f"config file {config} is accessible by others (mode 0644)" in str(refused.value)
    assert "chmod 600" in str(refused.value)
    os.chmod(config, 0o600)
    settings = settings_resolve(url=None, token=None, config=str(config))
    assert (settings.url, settings.token) == ("http://ops.example:8000", "secret-token")
    # The environment wins over the file, the flags over both.
    monkeypatch.setenv("OPSCTL_TOKEN", "env-token")
    assert settings_resolve(url=None, token=None, config=str(config)).token == "env-token"
    assert settings_resolve(url=None, token="flag", config=str(config)).token == "flag"


def test_without_url_or_token_it_says_which(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPSCTL_URL", raising=False)
    monkeypatch.delenv("OPSCTL_TOKEN", raising=False)
    monkeypatch.setenv("OPSCTL_CONFIG", str(tmp_path / "absent.toml"))
    assert main(["ls"]) == 2
    assert capsys.readouterr().err.startswith("opsctl: no server URL: set OPSCTL_URL")
    monkeypatch.setenv("OPSCTL_URL", "http://127.0.0.1:9")
    assert main(["ls"]) == 2
    assert capsys.readouterr().err.startswith("opsctl: no API token")


RESTART = {
    "slug": "restart",
    "versions": [
        {
            "number": 2,
            "parameters": {
                "properties": {
                    "service": {"type": "string"},
                    "count": {"type": "integer"},
                    "force": {"type": "boolean"},
                    "version": {"type": "string"},
                    "build": {"type": "string"},
                }
            },
        },
        {"number": 1, "parameters": {}},
    ],
}


def _runbook_server() -> LoopbackHttpServer:
    def responder(
        method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if method == "GET":
            return json_answer(200, RESTART)
        return json_answer(202, {"execution_id": "e-9", "status": "queued"})

    return LoopbackHttpServer(responder)


def test_launch_sends_parameters_in_the_runbooks_types(capsys: pytest.CaptureFixture[str]) -> None:
    """The schema decides a value's type: a string parameter given digits stays a string
    (opsctl used to guess from the text, and ``-p build=123`` was refused as no string)."""
    with _runbook_server() as server:
        args = ["--url", server.url, "--token", "t", "launch", "restart", "--tenant", "acme"]
        for pair in ("service=nginx", "count=3", "force=true", "version=1.10", "build=123"):
            args += ["-p", pair]
        code = main(args)
    assert code == 0 and capsys.readouterr().out == "execution e-9 queued\n"
    read, sent = server.requests
    assert read["method"] == "GET" and read["path"].startswith("/api/v1/runbooks/restart/?tenant=acme")
    assert sent["path"] == "/api/v1/runbooks/restart/launch/"
    assert json.loads(sent["body"]) == {
        "tenant": "acme",
        "params": {"service": "nginx", "count": 3, "force": True, "version": "1.10", "build": "123"},
        "dry_run": False,
        "version": 2,
    }
