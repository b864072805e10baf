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
    0: {"exit_code": 0, "stdout": "nginx: configuration file test is successful\n"},
    1: {"status_code": 200, "json": {"service": {"state": "up", "pods": [1, 2]}}, "body": "{}"},
}


def validate(params: dict[str, Any], **kwargs: Any) -> Any:
    return get_runner("verify").run(
        make_ctx(
            "validate",
            params,
            step_index=2,
            previous_outputs=PREVIOUS,
            previous_statuses={0: "completed", 1: "completed"},
            **kwargs,
        )
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


@pytest.mark.usefixtures("loopback_opened")
def test_tcp_probe_open_and_closed(settings: Any) -> None:
    settings.HTTP_OUTBOUND_ALLOWLIST = ["127.0.0.1"]
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        open_port = listener.getsockname()[1]
        result = validate(
            {"tcp": [{"host": "127.0.0.1", "port": open_port}, {"host": "127.0.0.1", "port": free_port()}]}
        )
    assert result.status == "failed"
    assert [c["ok"] for c in result.output["checks"]] == [True, False]


@pytest.mark.usefixtures("loopback_opened")
def test_http_probe_obeys_the_allow_list(tenant: Any, settings: Any) -> None:
    with LoopbackHttpServer() as server:
        refused = validate({"http_get": server.url + "/health"})
        assert refused.status == "failed" and "not on the outbound allow-list" in refused.error_message
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


@pytest.mark.usefixtures("loopback_opened")
def test_a_tcp_probe_to_a_host_off_the_allow_list_fails_saying_so_and_connects_nowhere(
    tenant: Any, settings: Any
) -> None:
    # The finding: a probe reported the embedded database's port open. A real listener here
    # would answer; the probe must not even try.
    settings.HTTP_OUTBOUND_ALLOWLIST = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        result = validate({"tcp": {"host": "127.0.0.1", "port": port}})
        with pytest.raises(TimeoutError):
            listener.accept()  # nobody connected
    assert result.status == "failed"
    assert (
        "not on the outbound allow-list" in result.error_message
        and "no connection was attempted" in result.error_message
    )


def test_regex_assertions_run_in_re2_so_a_catastrophic_pattern_finishes_with_the_right_answer() -> None:
    import re2

    from execution.runners import validate as validate_module

    assert validate_module.re2 is re2  # the linear-time engine, not Python's backtracking re
    previous = {0: {"exit_code": 0, "stdout": "a" * 28 + "!"}}
    result = get_runner("validate").run(
        make_ctx(
            "validate",
            {"assertions": [{"step": 0, "regex": "^(a+)+$"}, {"step": 0, "regex": "^(a+)+!$"}]},
            step_index=1,
            previous_outputs=previous,
        )
    )
    assert [c["ok"] for c in result.output["checks"]] == [False, True]
    assert result.status == "failed" and "does not match /^(a+)+$/" in result.error_message


def test_a_pattern_re2_cannot_run_is_refused_at_submission_naming_it() -> None:
    # Backreferences need backtracking: Python's re accepts them, RE2 refuses them.
    problems = get_runner("validate").validate_params({"assertions": [{"step": 0, "regex": "(a)\\1"}]})
    assert [p.path for p in problems] == ["assertions[0].regex"]
