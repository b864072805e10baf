"""Progress counts a fleet step's targets (docs/fleet.md): the live events' progress, the API's
and the page's bar say how many targets ended, and a running fleet step moves the percent as
its targets end instead of sitting at its steps' share until the last one."""

from __future__ import annotations

from typing import Any

import pytest

from execution.api.payloads import execution_payload
from execution.enums import ExecutionStatus, TargetStatus
from execution.models import Execution, ExecutionEvent, ExecutionStep, StepTarget
from execution.pages.detail import progress_bar
from execution.realtime.reader import event_messages
from execution.services.submit import execution_submit
from tests.factories import AssetFactory

pytestmark = pytest.mark.django_db


def _running_fleet(tenant: Any, operator: Any, ended: list[str]) -> Execution:
    """A two-step plan (a fleet step on 4 targets, then a noop) whose fleet step runs, with
    ``ended`` the first targets' statuses (set directly: the worker's part is not under test)."""
    for n in range(4):
        AssetFactory(tenant=tenant, hostname=f"web-{n}", tags=["web"])
    plan = {
        "name": "rolling restart",
        "environment": "dev",
        "steps": [
            {
                "name": "restart",
                "type": "command",
                "targets": {"tags": ["web"]},
                "params": {"command": "true"},
            },
            {"name": "done", "type": "noop"},
        ],
    }
    execution = execution_submit(tenant=tenant.slug, actor=operator, plan=plan).execution
    Execution.objects.filter(pk=execution.pk).update(status=ExecutionStatus.RUNNING)
    ExecutionStep.objects.filter(execution=execution, step_index=0).update(status=ExecutionStatus.RUNNING)
    rows = StepTarget.objects.filter(execution_id=execution.execution_id).order_by("target_index")
    for row, status in zip(rows, ended, strict=False):
        StepTarget.objects.filter(pk=row.pk).update(status=status)
    return Execution.objects.get(pk=execution.pk)


def test_a_running_fleet_steps_ended_targets_move_the_percent_everywhere(tenant: Any, operator: Any) -> None:
    execution = _running_fleet(
        tenant,
        operator,
        [TargetStatus.COMPLETED, TargetStatus.FAILED, TargetStatus.SKIPPED, TargetStatus.RUNNING],
    )
    # Half the plan is its fleet step, three of whose four targets ended: 3/4 of 50 %.
    expected = {"percent": 37, "steps_done": 0, "steps_total": 2, "targets_done": 3, "targets_total": 4}
    api = execution_payload(execution)["progress"]
    assert {k: api[k] for k in expected} == expected
    event = ExecutionEvent.objects.filter(execution_id=execution.execution_id).order_by("-id").first()
    assert event is not None
    live = event_messages([event])[0]["progress"]
    assert {k: live[k] for k in expected} == expected
    bar = progress_bar(execution, [])
    assert bar["percent"] == 37 and bar["text"].startswith("37% · 0/2 steps · 3/4 targets"), bar


def test_a_plan_without_fleet_steps_counts_no_targets(tenant: Any, operator: Any) -> None:
    plan = {"name": "one", "environment": "dev", "steps": [{"name": "n", "type": "noop"}]}
    execution = execution_submit(tenant=tenant.slug, actor=operator, plan=plan).execution
    progress = execution_payload(Execution.objects.get(pk=execution.pk))["progress"]
    assert "targets_total" not in progress and progress["percent"] == 0
