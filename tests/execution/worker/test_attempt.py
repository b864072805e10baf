"""An attempt's choices: a step's own retry budget, not the queue's attempts."""

from __future__ import annotations

import time
from typing import Any

import pytest

from execution.enums import ExecutionStatus
from execution.models import DeadLetter, Execution, ExecutionEvent, ExecutionStep, QueueItem
from execution.worker.runtime import drain
from tests.execution.engine.helpers import enqueue, make_execution

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fast_retries(settings: Any) -> None:
    settings.RETRY_BACKOFF_BASE_SECONDS = 0.05


def _run_until_finished(execution: Execution) -> Execution:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        drain(budget_seconds=5)
        execution.refresh_from_db()
        if execution.status not in (ExecutionStatus.QUEUED, ExecutionStatus.RUNNING):
            return execution
        time.sleep(0.05)
    raise AssertionError(f"still {execution.status}")


@pytest.mark.parametrize("max_retries", [0, 1])
def test_a_failing_step_runs_max_retries_plus_one_times_spending_one_queue_attempt(
    tenant: Any, operator: Any, max_retries: int
) -> None:
    failing = {"type": "sleep", "params": {"seconds": 0, "fail": True}, "max_retries": max_retries}
    # medium x read: the policy allows 5 queue attempts; they are for platform faults.
    execution = make_execution(
        tenant=tenant, actor=operator, steps=[failing], sla_class="medium", action_class="read"
    )
    enqueue(execution)
    execution = _run_until_finished(execution)
    assert execution.status == ExecutionStatus.FAILED
    assert QueueItem.objects.get(execution=execution).attempt_count == 1
    runs = ExecutionEvent.objects.filter(execution=execution, event_type="step_started").count()
    assert runs == max_retries + 1
    assert ExecutionStep.objects.get(execution=execution).retry_count == max_retries
    assert not DeadLetter.objects.filter(execution=execution).exists(), "a failed step is no fault"


def test_a_validate_status_assertion_sees_the_real_status_of_a_failed_step(
    tenant: Any, operator: Any
) -> None:
    """The engine hands validate the statuses of earlier steps (a status assertion used to
    see only completed steps' outputs and default to "completed")."""
    steps = [
        {"name": "may fail", "type": "sleep", "params": {"seconds": 0, "fail": True}, "max_retries": 0},
        {
            "name": "saw it fail",
            "type": "validate",
            "params": {"assertions": [{"step": 0, "status": "failed"}]},
        },
        {
            "name": "not completed",
            "type": "validate",
            "params": {"assertions": [{"step": 0, "status": "completed"}]},
            "max_retries": 0,
        },
    ]
    plan_steps = [dict(s, continue_on_error=True) for s in steps]
    execution = make_execution(tenant=tenant, actor=operator, steps=plan_steps, action_class="read")
    enqueue(execution)
    execution = _run_until_finished(execution)
    statuses = list(
        ExecutionStep.objects.filter(execution=execution)
        .order_by("step_index")
        .values_list("status", flat=True)
    )
    assert statuses == ["failed", "completed", "failed"]
    assert execution.status == ExecutionStatus.PARTIAL
