"""Approval gates inside a plan (docs/approvals.md#gates): a gate parks the execution in
pending_approval and frees its worker; an approval resumes it after the gate; a rejection,
an expiry or a cancel ends it with the later steps cancelled."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from approvals.errors import VoteForbidden
from approvals.models import GateApproval
from approvals.services import approval_vote, approvals_expire
from execution.enums import ExecutionStatus, Role
from execution.models import Execution, ExecutionEvent, QueueItem
from execution.services.cancel import execution_cancel
from execution.worker.locks import locks_holding
from tests.approvals.conftest import member
from tests.execution.engine.helpers import (
    drain_until_done,
    enqueue,
    make_execution,
    wait_until,
    worker_cluster,
)
from tests.factories import AssetFactory

S = ExecutionStatus


def gate(**params: Any) -> dict[str, Any]:
    return {"name": "look at the canary", "type": "approval", "params": params, "action_class": "read"}


def _steps(execution: Execution) -> list[str]:
    return list(execution.steps.order_by("step_index").values_list("status", flat=True))


def _started(execution: Execution, step: int) -> int:
    return ExecutionEvent.objects.filter(
        execution=execution, event_type="step_started", step_index=step
    ).count()


def _parked(tenant: Any, operator: Any, steps: list[dict[str, Any]], **fields: Any) -> Execution:
    """An execution run in this process up to its gate."""
    execution = make_execution(tenant=tenant, actor=operator, steps=steps, **fields)
    enqueue(execution)
    execution = drain_until_done(execution)
    assert execution.status == S.PENDING_APPROVAL, execution.status
    return execution


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_gate_pauses_frees_its_slot_and_resumes_after_the_gate(tenant: Any, operator: Any) -> None:
    """One worker: the gated execution parks, another execution runs on that worker meanwhile,
    and the approval resumes the first at the step after the gate (the canary does not run again)."""
    bob = member(tenant, "bob-approver", Role.APPROVER)
    gated = make_execution(
        tenant=tenant,
        actor=operator,
        steps=[
            {"name": "canary", "type": "sleep", "params": {"seconds": 0.2}},
            gate(level=1, message="canary healthy?"),
            {"name": "rest", "type": "sleep", "params": {"seconds": 0.2}},
        ],
    )
    other = make_execution(
        tenant=tenant, actor=operator, steps=[{"type": "sleep", "params": {"seconds": 0.2}}]
    )
    with worker_cluster(workers=1):
        enqueue(gated)
        wait_until(
            lambda: Execution.objects.get(pk=gated.pk).status == S.PENDING_APPROVAL, 60, what="the gate"
        )
        assert _steps(gated) == [S.COMPLETED, S.PENDING_APPROVAL, S.PENDING_APPROVAL]
        assert QueueItem.objects.get(execution=gated).status == "completed"  # the slot is free
        enqueue(other)
        wait_until(lambda: Execution.objects.get(pk=other.pk).status == S.COMPLETED, 60, what="the other one")
        assert Execution.objects.get(pk=gated.pk).status == S.PENDING_APPROVAL
        waiting = GateApproval.objects.get(execution=gated)
        assert (waiting.step_index, waiting.approval_level, waiting.message) == (1, 1, "canary healthy?")
        approval_vote(approval=waiting, voter=bob, decision="approve", comment="canary fine")
        wait_until(lambda: Execution.objects.get(pk=gated.pk).status == S.COMPLETED, 60, what="the rest")
    gated.refresh_from_db()
    assert _steps(gated) == [S.COMPLETED, S.COMPLETED, S.COMPLETED]
    assert _started(gated, 0) == 1 and _started(gated, 2) == 1
    types = list(
        ExecutionEvent.objects.filter(execution=gated).order_by("id").values_list("event_type", flat=True)
    )
    after_gate = types[types.index("gate_waiting") :]
    assert [t for t in after_gate if t in ("approval_vote", "approved", "queued", "started")] == [
        "approval_vote",
        "approved",
        "queued",
        "started",
    ]
    assert types.count("started") == 2
    assert GateApproval.objects.get(execution=gated).state == "approved"


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_rejected_gate_cancels_the_rest_on_real_workers(tenant: Any, operator: Any) -> None:
    bob = member(tenant, "bob-approver", Role.APPROVER)
    execution = make_execution(
        tenant=tenant,
        actor=operator,
        steps=[{"type": "noop"}, gate(), {"type": "sleep", "params": {"seconds": 0.1}}, {"type": "noop"}],
    )
    with worker_cluster(workers=1):
        enqueue(execution)
        wait_until(
            lambda: Execution.objects.get(pk=execution.pk).status == S.PENDING_APPROVAL, 60, what="the gate"
        )
        approval_vote(
            approval=GateApproval.objects.get(execution=execution),
            voter=bob,
            decision="reject",
            comment="canary errors up",
        )
    execution.refresh_from_db()
    assert execution.status == S.REJECTED
    assert _steps(execution) == [S.COMPLETED, S.REJECTED, S.CANCELLED, S.CANCELLED]
    assert _started(execution, 2) == 0


@pytest.mark.django_db(transaction=True)
def test_a_gate_releases_the_locks_unless_it_holds_them(tenant: Any, operator: Any) -> None:
    asset = AssetFactory(tenant=tenant)
    steps = [{"type": "noop", "target": {"asset_id": asset.pk}}, gate()]
    released = _parked(tenant, operator, steps)
    assert locks_holding(execution=released) == []
    held = _parked(tenant, operator, [steps[0], gate(hold_locks=True)])
    assert locks_holding(execution=held) == [str(asset.pk)]
    execution_cancel(execution=held, actor=None)
    assert locks_holding(execution=held) == []
    assert GateApproval.objects.get(execution=held).state == "rejected"
    assert _steps(Execution.objects.get(pk=held.pk)) == [S.COMPLETED, S.CANCELLED]


@pytest.mark.django_db(transaction=True)
def test_an_expired_gate_ends_the_execution_rejected(tenant: Any, operator: Any) -> None:
    execution = _parked(tenant, operator, [gate(timeout_seconds=60), {"type": "noop"}])
    assert approvals_expire(now=timezone.now() + timedelta(seconds=61)) == 1
    execution.refresh_from_db()
    assert execution.status == S.REJECTED
    assert _steps(execution) == [S.REJECTED, S.CANCELLED]
    assert GateApproval.objects.get(execution=execution).state == "expired"


@pytest.mark.django_db(transaction=True)
def test_a_gate_of_level_two_needs_two_distinct_approvers(tenant: Any, operator: Any) -> None:
    bob = member(tenant, "bob-approver", Role.APPROVER)
    ann = member(tenant, "ann-approver", Role.APPROVER)
    execution = _parked(tenant, operator, [gate(level=2), {"type": "noop"}])
    waiting = GateApproval.objects.get(execution=execution)
    approval_vote(approval=waiting, voter=bob, decision="approve")
    assert Execution.objects.get(pk=execution.pk).status == S.PENDING_APPROVAL
    approval_vote(approval=waiting, voter=ann, decision="approve")
    assert drain_until_done(execution).status == S.COMPLETED


@pytest.mark.django_db(transaction=True)
def test_a_gate_for_admins_refuses_an_approver(tenant: Any, operator: Any, tenant_admin: Any) -> None:
    bob = member(tenant, "bob-approver", Role.APPROVER)
    execution = _parked(tenant, operator, [gate(approvers="admin"), {"type": "noop"}])
    waiting = GateApproval.objects.get(execution=execution)
    with pytest.raises(VoteForbidden) as refused:
        approval_vote(approval=waiting, voter=bob, decision="approve")
    assert refused.value.code == "missing_role"
    assert not waiting.votes.exists()
    approval_vote(approval=waiting, voter=tenant_admin, decision="approve")
    assert drain_until_done(execution).status == S.COMPLETED


@pytest.mark.django_db(transaction=True)
def test_a_dry_run_passes_its_gates(tenant: Any, operator: Any) -> None:
    execution = make_execution(tenant=tenant, actor=operator, steps=[gate(), {"type": "noop"}], dry_run=True)
    enqueue(execution)
    assert drain_until_done(execution).status == S.COMPLETED
    assert not GateApproval.objects.filter(execution=execution).exists()
