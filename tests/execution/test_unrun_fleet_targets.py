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
