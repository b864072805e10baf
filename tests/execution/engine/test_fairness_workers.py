"""Fair tenants on real worker processes: one tenant's backlog on every slot does not hold
another tenant's short execution back."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from execution.models import Execution, ExecutionStep
from tests.execution.engine.helpers import enqueue, make_execution, wait_until, worker_cluster
from tests.factories import MembershipFactory, TenantFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_another_tenants_execution_starts_within_5_seconds_behind_20_long_ones(
    tenant: Any, operator: Any
) -> None:
    other = TenantFactory()
    MembershipFactory(tenant=other, user=operator, role="operator")
    backlog = [
        make_execution(
            tenant=tenant,
            actor=operator,
            priority=1,
            action_class="read",
            steps=[{"type": "sleep", "params": {"seconds": 3}}],
        )
        for _ in range(20)
    ]
    with worker_cluster(workers=2):
        for execution in backlog:
            enqueue(execution)
        wait_until(
            lambda: ExecutionStep.objects.filter(execution__in=backlog, status="running").count() == 2,
            60,
            what="tenant A's executions on both slots",
        )
        short = make_execution(
            tenant=other, actor=operator, priority=5, action_class="read", steps=[{"type": "noop"}]
        )
        enqueue(short)
        queued_at = timezone.now()
        wait_until(
            lambda: Execution.objects.filter(pk=short.pk, status="completed").exists(),
            30,
            what="tenant B's run",
        )
        short.refresh_from_db()
        waiting = Execution.objects.filter(pk__in=[e.pk for e in backlog], started_at__isnull=True).count()
    assert short.started_at is not None
    assert (short.started_at - queued_at).total_seconds() < 5.0, (queued_at, short.started_at)
    assert waiting >= 10, "tenant B went ahead of tenant A's backlog, not after it"
