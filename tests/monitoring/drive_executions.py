"""A producer process for the metrics test: executions moved through transition() like a worker.

``python -m tests.monitoring.drive_executions <tenant> <count>`` (with the test database in
DATABASE_URL). Stands in for a worker process until the engine's workers are in the checkout.
"""

from __future__ import annotations

import os
import sys
import uuid
from datetime import timedelta


def main(tenant_slug: str, count: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconductor.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from execution.enums import ActorType, ExecutionMode, ExecutionStatus, QueueStatus, SlaClass
    from execution.models import Execution, ExecutionStep, QueueItem, Tenant
    from execution.services.transition import transition

    tenant, _ = Tenant.objects.get_or_create(slug=tenant_slug)
    actor, _ = get_user_model().objects.get_or_create(username=f"{tenant_slug}-actor")
    ends = [ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.COMPLETED, None]
    for i in range(count):
        execution = Execution.objects.create(
            tenant=tenant,
            actor=actor,
            idempotency_key=uuid.uuid4().hex + uuid.uuid4().hex,
            plan_snapshot={"name": "drive", "environment": "dev", "steps": []},
            execution_mode=ExecutionMode.BACKGROUND,
            sla_class=[SlaClass.FAST, SlaClass.MEDIUM][i % 2],
        )
        transition(execution, ExecutionStatus.APPROVED, actor_type=ActorType.SYSTEM)
        transition(execution, ExecutionStatus.QUEUED, actor_type=ActorType.SYSTEM)
        item = QueueItem.objects.create(
            execution=execution,
            tenant_id=execution.tenant_id,
            environment=execution.environment,
            sla_class=execution.sla_class,
        )
        end = ends[i % len(ends)]
        if end is None:
            continue  # left waiting in the queue
        transition(execution, ExecutionStatus.RUNNING, actor_type=ActorType.WORKER)
        QueueItem.objects.filter(pk=item.pk).update(
            status=QueueStatus.PROCESSING, dequeued_at=timezone.now() + timedelta(milliseconds=5)
        )
        for index in range(2):
            ExecutionStep.objects.create(
                execution=execution,
                step_index=index,
                step_name=f"s{index}",
                step_type=["noop", "sleep"][index],
                status=ExecutionStatus.COMPLETED,
                started_at=timezone.now(),
                completed_at=timezone.now(),
                duration_ms=(i * 37 + index * 500) % 4000,
            )
        transition(execution, end, actor_type=ActorType.WORKER, expected_from=ExecutionStatus.RUNNING)
        QueueItem.objects.filter(pk=item.pk).update(status=QueueStatus.COMPLETED, completed_at=timezone.now())
    print(f"done {tenant_slug} {count}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
