"""``http`` steps against a real loopback server: allow-list, status, cap, dry run, cancel."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from execution.models import OutboundAllowRule
from execution.runners.registry import get_runner
from tests.execution.runners.conftest import make_ctx
from tests.factories import ExecutionFactory
from tests.support.httpserver import LoopbackHttpServer, json_answer, slow

# The servers listen on loopback, opened the operator's way; the allow-list still decides.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("loopback_opened")]


def test_host_not_on_allow_list_fails_clearly_and_sends_nothing(tenant: Any) -> None:
    with LoopbackHttpServer() as server:
        result = get_runner("http").run(make_ctx("http", {"url": server.url + "/x"}))
    assert result.status == "failed"
    assert "'127.0.0.1' is not on the outbound allow-list of tenant 'acme'" in result.error_message
    assert "no request was sent" in result.error_message
    assert server.requests == []


@pytest.mark.parametrize("runner", ["http", "validate"])
def test_a_url_whose_text_names_an_allowed_host_but_connects_elsewhere_is_refused(
    tenant: Any, settings: Any, runner: str
) -> None:
    """The finding: the allow-list read the host from the raw text, requests from the URL it
    prepares: ``http://127.0.0.1:<port>\\@allowed.example.com/`` passed as allowed.example.com
    and reached the loopback port (the product's own, in the live attack)."""
    settings.HTTP_OUTBOUND_ALLOWLIST = ["allowed.example.com"]
    with LoopbackHttpServer() as server:
        url = server.url + "\\@allowed.example.com/"
        params = {"url": url} if runner == "http" else {"http_get": url}
        result = get_runner(runner).run(make_ctx(runner, params))
    assert result.status == "failed"
    assert server.requests == []
    assert "'127.0.0.1' is not on the outbound allow-list" in str(result.error_message) + str(result.output)


def test_allowed_by_tenant_rule_for_the_execution_environment(tenant: Any) -> None:
    execution = ExecutionFactory(tenant=tenant, environment="staging")
    OutboundAllowRule.objects.create(tenant=tenant, environment="staging", host_pattern="127.0.0.*")
    with LoopbackHttpServer(lambda m, p, h, b: json_answer(201, {"id": 7})) as server:
        ctx = make_ctx(
            "api",
            {
                "method": "POST",
                "url": server.url + "/items",
                "json": {"a": 1},
                "headers": {"X-Token": "t"},
                "expect_status": 201,
            },
            execution_id=str(execution.execution_id),
        )
        result = get_runner("api").run(ctx)
    assert result.status == "completed", result.error_message
    assert result.output["status_code"] == 201 and result.output["json"] == {"id": 7}
    assert server.requests[0]["body"] == b'{"a": 1}' and server.requests[0]["headers"]["X-Token"] == "t"


def test_rule_of_another_environment_does_not_allow(tenant: Any) -> None:
    execution = ExecutionFactory(tenant=tenant, environment="prod")
    OutboundAllowRule.objects.create(tenant=tenant, environment="staging", host_pattern="127.0.0.1")
    with LoopbackHttpServer() as server:
        result = get_runner("http").run(
            make_ctx("http", {"url": server.url}, execution_id=str(execution.execution_id))
        )
    assert result.status == "failed" and server.requests == []


def test_unexpected_status_fails_and_body_is_capped(tenant: Any, settings: Any) -> None:
    settings.HTTP_OUTBOUND_ALLOWLIST = ["127.0.0.1"]
    settings.STEP_OUTPUT_CAP_BYTES = 1024
    with LoopbackHttpServer(lambda m, p, h, b: (503, {}, b"x" * 50_000)) as server:
        result = get_runner("http").run(make_ctx("http", {"url": server.url}))
    assert result.status == "failed"
    assert "expected status 2xx, got 503" in result.error_message
    assert len(result.output["body"]) == 1024 and result.output["truncated"] is True


def test_cancel_abandons_a_slow_call(tenant: Any, settings: Any) -> None:
    settings.HTTP_OUTBOUND_ALLOWLIST = ["127.0.0.1"]
    with LoopbackHttpServer(slow(20, (200, {}, b"late"))) as server:
        ctx = make_ctx("http", {"url": server.url}, timeout=60)
        threading.Timer(0.5, ctx.cancel_event.set).start()
        result = get_runner("http").run(ctx)
    assert result.status == "cancelled"


def test_step_timeout(tenant: Any, settings: Any) -> None:
    settings.HTTP_OUTBOUND_ALLOWLIST = ["127.0.0.1"]
    with LoopbackHttpServer(slow(20, (200, {}, b"late"))) as server:
        result = get_runner("http").run(make_ctx("http", {"url": server.url}, timeout=1))
    assert result.status == "timeout"


def test_dry_run_sends_nothing_and_says_what_would_run(tenant: Any, settings: Any) -> None:
    settings.HTTP_OUTBOUND_ALLOWLIST = ["127.0.0.1"]
    with LoopbackHttpServer() as server:
        ctx = make_ctx("http", {"method": "DELETE", "url": server.url + "/v1/thing"}, dry_run=True)
        result = get_runner("http").dry_run(ctx)
    assert server.requests == []
    assert result.status == "completed" and result.output["dry_run"] is True
    assert result.output["would_run"]["would_send"] == f"DELETE {server.url}/v1/thing"


def test_action_class_and_param_validation() -> None:
    runner = get_runner("http")
    assert runner.default_action_class({"method": "get"}) == "read"
    assert runner.default_action_class({"method": "POST"}) == "modify"
    problems = runner.validate_params({"url": "ftp://x", "method": "BREW"})
    assert {p.path for p in problems} == {"url", "method"}
