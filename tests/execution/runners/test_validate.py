"""``validate`` steps: assertions on earlier outputs, TCP and HTTP probes."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from execution.runners.registry import get_runner
from tests.execution.runners.conftest import make_ctx
from tests.support.httpserver import LoopbackHttpServer
from tests.support.processes import free_port

pytestmark = pytest.mark.django_db

PREVIOUS = {
    0: {"exit_code": 0, "stdout": "nginx: configuration file test is successful\n", "status": "completed"},
    1: {"status_code": 200, "json": {"service": {"state": "up", "pods": [1, 2]}}, "body": "{}"},
}


def validate(params: dict[str, Any], **kwargs: Any) -> Any:
    return get_runner("verify").run(
        make_ctx("validate", params, step_index=2, previous_outputs=PREVIOUS, **kwargs)
    )


def test_assertions_pass() -> None:
    result = validate(
        {
            "assertions": [
                {"step": 0, "exit_code": 0},
                {"step": 0, "status": "completed"},
                {"step": 0, "regex": "test is successful"},
                {"http_status": 200},
                {"json_field": "service.state", "equals": "up"},
                {"json_field": "service.pods.1"},
            ]
        }
    )
    assert result.status == "completed", result.error_message
    assert result.output["passed"] == 6


def test_failed_assertion_names_what_failed() -> None:
    result = validate(
        {"assertions": [{"step": 0, "exit_code": 1}, {"json_field": "service.state", "equals": "down"}]}
    )
    assert result.status == "failed"
    assert "step 0 exit_code 0 (want 1)" in result.error_message
    assert "service.state = 'up' (want 'down')" in result.error_message


def test_tcp_probe_open_and_closed() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        open_port = listener.getsockname()[1]
        result = validate(
            {"tcp": [{"host": "127.0.0.1", "port": open_port}, {"host": "127.0.0.1", "port": free_port()}]}
        )
    assert result.status == "failed"
    assert [c["ok"] for c in result.output["checks"]] == [True, False]


def test_http_probe_obeys_the_allow_list(tenant: Any, settings: Any) -> None:
    with LoopbackHttpServer() as server:
        refused = validate({"http_get": server.url + "/health"})
        assert refused.status == "failed" and "not on the allow-list" in refused.error_message
        assert server.requests == []
        settings.HTTP_OUTBOUND_ALLOWLIST = ["127.0.0.1"]
        allowed = validate({"http_get": server.url + "/health", "expect_status": 200})
    assert allowed.status == "completed", allowed.error_message
    assert len(server.requests) == 1


def test_params_validation() -> None:
    runner = get_runner("check")
    assert runner.default_action_class({}) == "read"
    assert runner.validate_params({})
    assert runner.validate_params({"assertions": [{"nothing": 1}]})
    assert not runner.validate_params({"assertions": [{"exit_code": 0}]})


def test_status_of_a_completed_step_without_status_key() -> None:
    result = validate({"assertions": [{"step": 1, "status": "completed"}]})
    assert result.status == "completed", result.error_message
