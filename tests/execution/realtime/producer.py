"""A separate process that runs a three-step execution through the engine's services.

Usage: python -m tests.execution.realtime.producer <execution pk> <seconds per step>
       [--start-file F] [--pause-file F --pause-after N]
Writes: approved, queued, started, then per step step_started, step_output,
step_completed, and finally completed (13 events for three steps).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path


def _wait_file(path: str | None, timeout: float = 120) -> None:
    if not path:
        return
    deadline = time.monotonic() + timeout
    while not Path(path).exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {path}")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("execution_pk", type=int)
    parser.add_argument("step_seconds", type=float)
    parser.add_argument("--start-file")
    parser.add_argument("--pause-file")
    parser.add_argument("--pause-after", type=int, default=0)
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconductor.settings")
    import django

    django.setup()
    from django.db import transaction
    from django.utils import timezone

    from execution.enums import ActorType, ExecutionStatus
    from execution.models import Execution, ExecutionStep
    from execution.services.events import event_record
    from execution.services.progress import step_output_flush, step_output_record
    from execution.services.transition import transition

    _wait_file(args.start_file)
    execution = Execution.objects.get(pk=args.execution_pk)
    for status in (ExecutionStatus.APPROVED, ExecutionStatus.QUEUED, ExecutionStatus.RUNNING):
        execution = transition(execution, status, actor_type=ActorType.WORKER)
    for step in ExecutionStep.objects.filter(execution_id=execution.execution_id).order_by("step_index"):
        with transaction.atomic():
            step.status = ExecutionStatus.RUNNING
            step.started_at = timezone.now()
            step.save(update_fields=["status", "started_at", "updated_at"])
            event_record(
                execution=execution,
                event_type="step_started",
                actor_type=ActorType.WORKER,
                step_index=step.step_index,
                from_status=ExecutionStatus.QUEUED,
                to_status=ExecutionStatus.RUNNING,
            )
        step_output_record(
            execution=execution,
            step_index=step.step_index,
            stream="stdout",
            text=f"output of {step.step_name} password=hunter2\n",
        )
        step_output_flush(execution=execution, step_index=step.step_index)
        time.sleep(args.step_seconds)
        with transaction.atomic():
            step.status = ExecutionStatus.COMPLETED
            step.completed_at = timezone.now()
            step.duration_ms = int((step.completed_at - step.started_at).total_seconds() * 1000)
            step.save(update_fields=["status", "completed_at", "duration_ms", "updated_at"])
            event_record(
                execution=execution,
                event_type="step_completed",
                actor_type=ActorType.WORKER,
                step_index=step.step_index,
                from_status=ExecutionStatus.RUNNING,
                to_status=ExecutionStatus.COMPLETED,
            )
        if args.pause_file and step.step_index == args.pause_after:
            _wait_file(args.pause_file)
    transition(execution, ExecutionStatus.COMPLETED, actor_type=ActorType.WORKER)


if __name__ == "__main__":
    main()
