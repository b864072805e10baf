"""A fleet step that will never run never leaves its targets pending (docs/fleet.md): every
way an execution ends before its step runs marks the step cancelled and its targets skipped,
through the one helper (execution.services.transition.steps_never_run)."""

from __future__ import annotations

from typing import Any

import pytest

from execution.enums import ExecutionStatus, TargetStatus
from execution.models import Execution, StepTarget
from execution.services.cancel import execution_cancel
from execution.services.submit import execution_submit
from execution.services.transition import execution_fail_unstarted
from tests.factories import AssetFactory

pytestmark = pytest.mark.django_db
S = ExecutionStatus


def _queued_fleet(tenant: Any, operator: Any) -> Execution:
    for n in range(3):
        AssetFactory(tenant=tenant, hostname=f"web-{n}", tags=["web"])
    step = {"name": "restart", "type": "command", "targets": {"tags": ["web"]}, "params": {"command": "true"}}
    plan = {"name": "fleet", "environment": "dev", "steps": [step]}
    execution = execution_submit(tenant=tenant.slug, actor=operator, plan=plan).execution
    assert execution.status == S.QUEUED
    return execution


def _state(execution: Execution) -> tuple[list[str], list[str]]:
    steps = list(execution.steps.order_by("step_index").values_list("status", flat=True))
    targets = StepTarget.objects.filter(execution_id=execution.execution_id).order_by("target_index")
    return steps, list(targets.values_list("status", flat=True))


def test_cancelled_before_it_ran(tenant: Any, operator: Any) -> None:
    execution = _queued_fleet(tenant, operator)
    assert _state(execution) == ([S.QUEUED], [TargetStatus.PENDING] * 3)
    execution_cancel(execution=execution, actor=operator, reason="not today")
    assert _state(execution) == ([S.CANCELLED], [TargetStatus.SKIPPED] * 3)


def test_failed_before_it_started(tenant: Any, operator: Any) -> None:
    execution = _queued_fleet(tenant, operator)
    execution_fail_unstarted(execution=execution, reason="the right was revoked")
    assert _state(execution) == ([S.CANCELLED], [TargetStatus.SKIPPED] * 3)


def test_a_retried_fleet_step_cancelled_in_the_queue_leaves_nothing_running_or_waiting(
    tenant: Any, operator: Any
) -> None:
    """A worker died mid-step (one target done, one running, one waiting for a lock); the
    execution waits in the queue for its next attempt and is cancelled there: nobody will run
    those targets, so none stays running or waiting."""
    execution = _queued_fleet(tenant, operator)
    rows = list(StepTarget.objects.filter(execution_id=execution.execution_id).order_by("target_index"))
    for row, status in zip(
        rows, (TargetStatus.COMPLETED, TargetStatus.RUNNING, TargetStatus.WAITING), strict=True
    ):
        StepTarget.objects.filter(pk=row.pk).update(status=status)
    execution_cancel(execution=execution, actor=operator, reason="not today")
    assert _state(execution) == (
        [S.CANCELLED],
        [TargetStatus.COMPLETED, TargetStatus.CANCELLED, TargetStatus.SKIPPED],
    )


def test_a_waiting_target_is_not_counted_done_in_progress(tenant: Any, operator: Any) -> None:
    from execution.api.payloads import execution_payload

    execution = _queued_fleet(tenant, operator)
    StepTarget.objects.filter(execution_id=execution.execution_id, target_index=0).update(
        status=TargetStatus.WAITING
    )
    progress = execution_payload(Execution.objects.get(pk=execution.pk))["progress"]
    assert (progress["targets_done"], progress["targets_total"]) == (0, 3)


@pytest.mark.django_db(transaction=True)
def test_a_failed_step_leaves_a_later_fleet_steps_targets_skipped(tenant: Any, operator: Any) -> None:
    """The worker's finish statement cancels the steps that will not run now; a fleet step
    among them had its targets left pending (seen by a helper's trial)."""
    from tests.execution.engine.helpers import drain_until_done

    for n in range(3):
        AssetFactory(tenant=tenant, hostname=f"web-{n}", tags=["web"])
    plan = {
        "name": "fails first",
        "environment": "dev",
        "steps": [
            {
                "name": "check",
                "type": "command",
                "target": {"hostname": "web-0"},
                "params": {"command": "exit 1"},
            },
            {
                "name": "restart",
                "type": "command",
                "targets": {"tags": ["web"]},
                "params": {"command": "true"},
            },
        ],
    }
    execution = execution_submit(tenant=tenant.slug, actor=operator, plan=plan).execution
    execution = drain_until_done(execution)
    assert execution.status == S.FAILED
    assert _state(execution) == ([S.FAILED, S.CANCELLED], [TargetStatus.SKIPPED] * 3)


def test_a_dead_workers_running_and_waiting_targets_are_pending_once_it_is_handed_back(
    tenant: Any, operator: Any
) -> None:
    """The reaper hands back an execution whose worker died mid-step: the targets that worker
    left running (or waiting for a lock) run again in the next attempt, so they say pending;
    they said running, with nobody running them, until the next attempt started (seen by an
    operator's trial). The completed one stays completed: it never runs again."""
    from django.utils import timezone

    from execution.enums import QueueStatus
    from execution.models import ExecutionEvent, QueueItem
    from execution.services.reaper import reap_expired

    execution = _queued_fleet(tenant, operator)
    Execution.objects.filter(pk=execution.pk).update(status=S.RUNNING, started_at=timezone.now())
    execution.steps.update(status=S.RUNNING)
    rows = list(StepTarget.objects.filter(execution_id=execution.execution_id).order_by("target_index"))
    for row, status in zip(
        rows, (TargetStatus.COMPLETED, TargetStatus.RUNNING, TargetStatus.WAITING), strict=True
    ):
        StepTarget.objects.filter(pk=row.pk).update(status=status)
    QueueItem.objects.filter(execution=execution).update(
        status=QueueStatus.PROCESSING,
        attempt_count=1,
        lease_token="00000000-0000-0000-0000-000000000001",
        lease_expires_at=timezone.now() - timezone.timedelta(seconds=1),
        worker_id="host:1",
    )
    assert reap_expired()["returned"] == 1
    assert Execution.objects.get(pk=execution.pk).status == S.QUEUED
    assert ExecutionEvent.objects.filter(execution=execution, event_type="retry_scheduled").exists()
    assert _state(execution)[1] == [TargetStatus.COMPLETED, TargetStatus.PENDING, TargetStatus.PENDING]
