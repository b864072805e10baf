"""Run windows (docs/approvals.md#run-windows): an approval given for a window keeps the
execution queued until the window starts, and an execution not started by its end never
starts."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from approvals.errors import VoteInvalid
from approvals.services import approval_request, approval_vote
from execution.enums import ExecutionStatus, Role
from execution.models import Execution, ExecutionEvent, QueueItem
from execution.worker.runtime import drain
from tests.approvals.conftest import member
from tests.approvals.test_api import client_for
from tests.execution.engine.helpers import drain_until_done, make_execution

S = ExecutionStatus


def _waiting(tenant: Any, operator: Any) -> Any:
    execution = make_execution(
        tenant=tenant, actor=operator, steps=[{"type": "noop"}], approve=False, approval_level=1
    )
    return approval_request(execution=execution, level=1)


@pytest.mark.django_db(transaction=True)
def test_an_approval_for_a_window_waits_for_its_start(tenant: Any, operator: Any) -> None:
    bob = member(tenant, "bob-approver", Role.APPROVER)
    approval = _waiting(tenant, operator)
    start = timezone.now() + timedelta(seconds=3)
    approval_vote(
        approval=approval, voter=bob, decision="approve", window=(start, start + timedelta(hours=1))
    )
    execution = Execution.objects.get(pk=approval.execution.pk)
    assert execution.status == S.QUEUED
    assert QueueItem.objects.get(execution=execution).available_at == start
    drain(budget_seconds=0.5)
    assert Execution.objects.get(pk=execution.pk).status == S.QUEUED  # not before the start
    time.sleep(max(0.0, (start - timezone.now()).total_seconds()) + 0.1)
    assert drain_until_done(execution).status == S.COMPLETED
    started = ExecutionEvent.objects.get(execution=execution, event_type="started").created_at
    assert started >= start


@pytest.mark.django_db(transaction=True)
def test_an_execution_not_started_by_the_windows_end_never_starts(tenant: Any, operator: Any) -> None:
    bob = member(tenant, "bob-approver", Role.APPROVER)
    approval = _waiting(tenant, operator)
    now = timezone.now()
    end = now + timedelta(seconds=1)
    approval_vote(approval=approval, voter=bob, decision="approve", window=(now - timedelta(minutes=5), end))
    time.sleep(max(0.0, (end - timezone.now()).total_seconds()) + 0.1)
    execution = drain_until_done(approval.execution)
    assert execution.status == S.FAILED
    assert "run window ended" in execution.error_message
    assert ExecutionEvent.objects.filter(execution=execution, event_type="run_window_ended").exists()
    assert not ExecutionEvent.objects.filter(execution=execution, event_type="started").exists()
    assert list(execution.steps.values_list("status", flat=True)) == [S.CANCELLED]


@pytest.mark.django_db
def test_two_approvers_windows_overlap_and_a_disjoint_one_is_refused(tenant: Any, operator: Any) -> None:
    bob = member(tenant, "bob-approver", Role.APPROVER)
    ann = member(tenant, "ann-approver", Role.APPROVER)
    eve = member(tenant, "eve-approver", Role.APPROVER)
    execution = make_execution(
        tenant=tenant, actor=operator, steps=[{"type": "noop"}], approve=False, approval_level=2
    )
    approval = approval_request(execution=execution, level=2)
    t0 = timezone.now() + timedelta(hours=1)
    approval_vote(approval=approval, voter=bob, decision="approve", window=(t0, t0 + timedelta(hours=4)))
    with pytest.raises(VoteInvalid) as refused:
        approval_vote(
            approval=approval,
            voter=eve,
            decision="approve",
            window=(t0 + timedelta(hours=5), t0 + timedelta(hours=6)),
        )
    assert refused.value.field == "window" and not approval.votes.filter(voter=eve).exists()
    approval_vote(
        approval=approval,
        voter=ann,
        decision="approve",
        window=(t0 + timedelta(hours=1), t0 + timedelta(hours=8)),
    )
    approval.refresh_from_db()
    assert (approval.run_after, approval.run_before) == (t0 + timedelta(hours=1), t0 + timedelta(hours=4))
    assert QueueItem.objects.get(execution=execution).available_at == approval.run_after


@pytest.mark.django_db
def test_rest_takes_a_window_and_names_a_missing_bound(tenant: Any, operator: Any, approver: Any) -> None:
    approval = _waiting(tenant, operator)
    url = f"/api/v1/executions/{approval.execution.execution_id}/approve/"
    start = timezone.now() + timedelta(hours=1)
    half = client_for(approver).post(url, {"window_start": start.isoformat()}, format="json")
    assert half.status_code == 400 and "window_end" in str(half.json()), half.json()
    reject = f"/api/v1/executions/{approval.execution.execution_id}/reject/"
    odd = {
        "comment": "no",
        "window_start": start.isoformat(),
        "window_end": (start + timedelta(hours=1)).isoformat(),
    }
    refused = client_for(approver).post(reject, odd, format="json")
    assert refused.status_code == 400 and refused.json()["errors"][0]["path"] == "window"
    body = {"window_start": start.isoformat(), "window_end": (start + timedelta(hours=2)).isoformat()}
    answer = client_for(approver).post(url, body, format="json")
    assert answer.status_code == 200, answer.content
    window = answer.json()["approval"]["run_window"]
    assert window == {"start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat()}
    assert answer.json()["status"] == "queued"
    # The execution's own body says it waits for a window (opsctl get prints it).
    shown = client_for(approver).get(f"/api/v1/executions/{approval.execution.execution_id}/")
    assert shown.json()["approval"]["run_window"] == window


@pytest.mark.django_db
def test_the_approval_page_takes_a_window_and_asks_again_for_half_a_one(
    tenant: Any, operator: Any, approver: Any
) -> None:
    approval = _waiting(tenant, operator)
    client = Client()
    client.force_login(approver)
    url = f"/approvals/{approval.approval_id}/"
    start = (timezone.now() + timedelta(hours=1)).replace(second=0, microsecond=0)
    fmt = "%Y-%m-%dT%H:%M"  # the datetime-local fields, read as UTC
    half = client.post(url, {"decision": "approve", "window_start": start.strftime(fmt)})
    assert half.status_code == 400 and "window_end: give the window" in half.content.decode()
    assert not approval.votes.exists()
    window = {"window_start": start.strftime(fmt), "window_end": (start + timedelta(hours=2)).strftime(fmt)}
    assert client.post(url, {"decision": "approve", **window}).status_code == 302
    approval.refresh_from_db()
    assert (approval.state, approval.run_after, approval.run_before) == (
        "approved",
        start,
        start + timedelta(hours=2),
    )
