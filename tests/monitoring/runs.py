"""A finished attempt written as the engine records it, for the rollup tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from execution.enums import ExecutionStatus
from execution.models import Execution, QueueItem
from execution.services.transition import transition
from tests.factories import ExecutionFactory, ExecutionStepFactory, QueueItemFactory


def finished_run(
    tenant: Any,
    end: str,
    *,
    sla: str = "fast",
    seconds: float = 2.0,
    steps: tuple[tuple[str, int], ...] = (("noop", 5),),
    wait: float = 1.5,
    late: bool = False,
) -> Execution:
    """One attempt as the engine records it: claimed after ``wait`` s in the queue, steps
    completed, ended ``end`` through transition() after ``seconds`` s, the claim closed."""
    now = timezone.now()
    started = now - timedelta(seconds=seconds)
    execution = ExecutionFactory(
        tenant=tenant,
        sla_class=sla,
        status=ExecutionStatus.RUNNING,
        started_at=started,
        timeout_at=now - timedelta(seconds=1) if late else now + timedelta(hours=1),
    )
    item = QueueItemFactory(
        execution=execution,
        sla_class=sla,
        status="processing",
        available_at=started - timedelta(seconds=wait),
        dequeued_at=started,
        attempt_started_at=started,
    )
    item.enqueued_at = started - timedelta(seconds=wait)  # (auto_now_add on insert)
    QueueItem.objects.filter(pk=item.pk).update(enqueued_at=item.enqueued_at)
    for index, (step_type, ms) in enumerate(steps):
        step = ExecutionStepFactory(
            execution=execution, step_index=index, step_type=step_type, status="running", started_at=started
        )
        step.status, step.completed_at, step.duration_ms = ExecutionStatus.COMPLETED, now, ms
        step.save()
    transition(execution, end, expected_from=ExecutionStatus.RUNNING)
    item.status = "completed"
    item.save()
    return execution
