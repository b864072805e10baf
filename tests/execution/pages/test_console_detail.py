"""``/executions/<id>/``: the whole history, attempts and streams, votes, reasons, a correct bar,
Run again and the output download (docs/contract.md#operator-console)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client

from execution.enums import ExecutionStatus, Role
from execution.models import Execution
from execution.services.events import event_record
from execution.services.transition import transition
from tests.factories import (
    ApprovalFactory,
    ApprovalVoteFactory,
    AssetFactory,
    ExecutionFactory,
    ExecutionStepFactory,
    MembershipFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _history(body: str) -> list[dict[str, Any]]:
    match = re.search(r'<script id="execution-history" type="application/json">(.*?)</script>', body, re.S)
    assert match, "the page embeds its history"
    return json.loads(match.group(1))  # type: ignore[no-any-return]


def _two_attempts(tenant: Any, actor: Any) -> Execution:
    """running -> retried -> running -> failed, output on both attempts, both streams."""
    execution = ExecutionFactory(tenant=tenant, actor=actor, status=ExecutionStatus.QUEUED)
    ExecutionStepFactory(execution=execution, step_index=0, step_name="migrate", step_type="command")
    transition(execution, ExecutionStatus.RUNNING)
    event_record(
        execution=execution,
        event_type="step_output",
        step_index=0,
        details={"stream": "stdout", "text": "one-out\n"},
    )
    event_record(
        execution=execution,
        event_type="step_output",
        step_index=0,
        details={"stream": "stderr", "text": "one-err\n"},
    )
    transition(execution, ExecutionStatus.QUEUED, event_type="retry_scheduled", reason="attempt 1 failed")
    transition(execution, ExecutionStatus.RUNNING)
    event_record(
        execution=execution,
        event_type="step_output",
        step_index=0,
        details={"stream": "stdout", "text": "two-out\n"},
    )
    event_record(
        execution=execution,
        event_type="step_output",
        step_index=0,
        details={"stream": "stderr", "text": "two-err\n"},
    )
    execution.steps.update(status=ExecutionStatus.FAILED, duration_ms=1500)
    return transition(execution, ExecutionStatus.FAILED, fields={"error_message": "exit code 3"})


def test_the_page_carries_every_event_since_creation(tenant: Any, viewer: Any, operator: Any) -> None:
    execution = _two_attempts(tenant, operator)
    body = _client(viewer).get(f"/executions/{execution.execution_id}/").content.decode()
    history = _history(body)
    from execution.models import ExecutionEvent

    stored = list(
        ExecutionEvent.objects.filter(execution=execution).order_by("id").values_list("id", flat=True)
    )
    assert [m["id"] for m in history] == stored
    assert f'data-after="{stored[-1]}"' in body  # the socket goes on after the last one rendered
    assert "exit code 3" in body and "1.50 s" in body


def test_download_separates_attempts_and_streams_with_timestamps(
    tenant: Any, viewer: Any, operator: Any
) -> None:
    execution = _two_attempts(tenant, operator)
    response = _client(viewer).get(f"/executions/{execution.execution_id}/output.txt")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert "attachment" in response["Content-Disposition"]
    text = response.content.decode()
    first, second = text.split("== step 0 migrate · attempt 2")
    assert "attempt 1" in first and "one-out" in first and "two-out" not in first
    assert re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z stderr two-err$", second, re.M)
    assert re.search(r"^\S+Z stdout one-out$", first, re.M)


def test_a_rejected_executions_steps_are_not_queued(
    tenant: Any, viewer: Any, operator: Any, approver: Any
) -> None:
    execution = ExecutionFactory(tenant=tenant, actor=operator)
    ExecutionStepFactory(execution=execution, step_index=0)
    approval = ApprovalFactory(execution=execution, approval_level=2)
    ApprovalVoteFactory(approval=approval, voter=approver, decision="reject", comment="not on a Friday")
    transition(execution, ExecutionStatus.REJECTED, actor=approver, reason="rejected by ada-approver")
    body = _client(viewer).get(f"/executions/{execution.execution_id}/").content.decode()
    assert 'data-status="not_run">not run</span>' in body
    assert 'data-status="queued"' not in body
    votes = body[body.index('<table id="votes"') :]
    assert "ada-approver" in votes and "reject" in votes and "not on a Friday" in votes


def test_the_approval_line_says_when_it_expires_only_while_it_waits(tenant: Any, viewer: Any) -> None:
    from datetime import UTC, datetime

    expires = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    decided = datetime(2030, 1, 2, 2, 59, 0, tzinfo=UTC)
    lines = {}
    for state, responded in (("pending", None), ("approved", decided), ("expired", None)):
        execution = ExecutionFactory(tenant=tenant)
        ApprovalFactory(execution=execution, state=state, expires_at=expires, responded_at=responded)
        body = _client(viewer).get(f"/executions/{execution.execution_id}/").content.decode()
        block = re.search(r'<div id="approval-block">.*?</p>', body, re.S)
        assert block
        lines[state] = " ".join(re.sub(r"<[^>]+>", "", block.group(0)).split())
    assert lines["pending"].endswith("pending · expires 2030-01-02 03:04:05 UTC"), lines
    # Decided, an expiry time reads like a deadline still to meet: the decision's time instead.
    assert lines["approved"].endswith("approved · decided 2030-01-02 02:59:00 UTC"), lines
    assert lines["expired"].endswith("expired · expired 2030-01-02 03:04:05 UTC"), lines


def test_the_cancel_reason_is_shown(tenant: Any, viewer: Any, operator: Any) -> None:
    execution = ExecutionFactory(tenant=tenant, actor=operator)
    transition(execution, ExecutionStatus.CANCELLED, actor=operator, reason="wrong window")
    body = _client(viewer).get(f"/executions/{execution.execution_id}/").content.decode()
    assert 'id="cancel-reason"' in body and "wrong window (by olga-operator)" in body


def _runnable(tenant: Any, actor: Any) -> Execution:
    from execution.services.submit import execution_submit

    AssetFactory(tenant=tenant, hostname="local-1")
    plan = {
        "name": "again and again",
        "environment": "dev",
        "steps": [{"name": "n", "type": "noop", "target": {"hostname": "local-1"}, "params": {}}],
    }
    return execution_submit(tenant=tenant, actor=actor, plan=plan, sla_class="medium").execution


def test_run_again_creates_a_new_linked_execution_not_a_replay(tenant: Any, operator: Any) -> None:
    original = _runnable(tenant, operator)
    client = _client(operator)
    assert 'id="run-again-button"' in client.get(f"/executions/{original.execution_id}/").content.decode()
    response = client.post(f"/executions/{original.execution_id}/run-again/")
    assert response.status_code == 302
    again = Execution.objects.exclude(pk=original.pk).get()
    assert response["Location"] == f"/executions/{again.execution_id}/"
    assert again.parent_execution_id == original.execution_id
    assert again.plan_snapshot == original.plan_snapshot and again.actor == operator
    assert again.idempotency_key != original.idempotency_key
    page = client.get(response["Location"]).content.decode()
    assert f'id="parent-link" href="/executions/{original.execution_id}/"' in page
    client.post(f"/executions/{original.execution_id}/run-again/")
    assert Execution.objects.filter(parent_execution_id=original.execution_id).count() == 2


def test_run_again_is_decided_by_the_submit_policy(tenant: Any, operator: Any, viewer: Any) -> None:
    original = _runnable(tenant, operator)
    client = _client(viewer)
    assert "run-again-button" not in client.get(f"/executions/{original.execution_id}/").content.decode()
    response = client.post(f"/executions/{original.execution_id}/run-again/", follow=True)
    assert "Run again refused" in response.content.decode()
    assert Execution.objects.count() == 1


def test_run_again_of_another_tenants_execution_is_404(tenant: Any, operator: Any, outsider: Any) -> None:
    original = _runnable(tenant, operator)
    assert _client(outsider).post(f"/executions/{original.execution_id}/run-again/").status_code == 404
    assert _client(outsider).get(f"/executions/{original.execution_id}/output.txt").status_code == 404


def test_detail_queries_are_bounded(tenant: Any, operator: Any) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    execution = _two_attempts(tenant, operator)
    for i in range(1, 20):
        ExecutionStepFactory(execution=execution, step_index=i)
        for _ in range(5):
            event_record(
                execution=execution,
                event_type="step_output",
                step_index=i,
                details={"stream": "stdout", "text": "x"},
            )
    user = UserFactory(username="watcher")
    MembershipFactory(tenant=tenant, user=user, role=Role.VIEWER)
    client = _client(user)
    client.get(f"/executions/{execution.execution_id}/")
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(f"/executions/{execution.execution_id}/").status_code == 200
    # (one of them: the header asks the policy whether to link to Notifications)
    assert len(ctx.captured_queries) < 16, [q["sql"][:100] for q in ctx.captured_queries]


def test_a_step_that_never_started_reads_not_run_and_a_stopped_one_cancelled(
    tenant: Any, viewer: Any
) -> None:
    """Steps that will not run end ``cancelled`` in their rows; the page said "cancelled" for
    a step after a failure that never started (the live page said "not run")."""
    from django.utils import timezone

    execution = ExecutionFactory(tenant=tenant, status=ExecutionStatus.FAILED)
    ExecutionStepFactory(
        execution=execution, step_index=0, status=ExecutionStatus.FAILED, started_at=timezone.now()
    )
    ExecutionStepFactory(execution=execution, step_index=1, status=ExecutionStatus.CANCELLED)
    ExecutionStepFactory(
        execution=execution, step_index=2, status=ExecutionStatus.CANCELLED, started_at=timezone.now()
    )
    body = _client(viewer).get(f"/executions/{execution.execution_id}/").content.decode()
    shown = re.findall(r'data-role="step-status" data-status="([a-z_]+)"', body)
    assert shown == ["failed", "not_run", "cancelled"]


def test_a_failed_run_is_an_empty_red_bar_not_a_full_blue_one(tenant: Any, viewer: Any) -> None:
    execution = ExecutionFactory(tenant=tenant, status=ExecutionStatus.FAILED)
    ExecutionStepFactory(execution=execution, step_index=0, status=ExecutionStatus.FAILED)
    body = _client(viewer).get(f"/executions/{execution.execution_id}/").content.decode()
    assert 'data-outcome="failed"' in body and 'style="width:0%"' in body
    assert "failed · 0/1 steps completed · 1 failed" in body


@pytest.mark.django_db(transaction=True)
def test_run_again_of_an_immediate_plan_answers_at_once_and_the_page_follows_it(
    tenant: Any, operator: Any, settings: Any
) -> None:
    """Run again waited for the immediate execution like the API does (up to the immediate
    wait: 7.5 s on an operator's day), holding the page; it redirects at once now. No worker
    runs here, so a waiting request would hang for the whole wait."""
    import threading

    from django.db import connection

    settings.IMMEDIATE_WAIT_SECONDS = 600
    AssetFactory(tenant=tenant, hostname="local-1")
    plan = {
        "name": "quick one",
        "environment": "dev",
        "estimated_duration_seconds": 2,
        "steps": [{"name": "n", "type": "noop", "target": {"hostname": "local-1"}, "params": {}}],
    }
    original = Execution.objects.create(
        tenant=tenant,
        actor=operator,
        plan_snapshot=plan,
        execution_mode="immediate",
        sla_class="fast",
        status=ExecutionStatus.COMPLETED,
    )
    answers: list[Any] = []

    def post() -> None:
        try:
            answers.append(_client(operator).post(f"/executions/{original.execution_id}/run-again/"))
        finally:
            connection.close()

    thread = threading.Thread(target=post, daemon=True)
    thread.start()
    thread.join(60)
    assert answers, "the page waited for a worker"
    again = Execution.objects.exclude(pk=original.pk).get()
    assert again.execution_mode == "immediate" and again.status == ExecutionStatus.QUEUED
    assert answers[0]["Location"] == f"/executions/{again.execution_id}/"
