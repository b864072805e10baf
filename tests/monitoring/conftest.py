"""Fixtures of the monitoring tests: the nine policies of docs/contract.md#data-model and a live worker heartbeat."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from tests.factories import TimeoutPolicyFactory, WorkerHeartbeatFactory

POLICIES = {
    ("fast", "read"): (5, 10, 15, 300, 3),
    ("fast", "modify"): (8, 15, 20, 600, 3),
    ("fast", "deploy"): (10, 20, 30, 900, 3),
    ("medium", "read"): (15, 30, 45, 600, 5),
    ("medium", "modify"): (20, 45, 60, 900, 5),
    ("medium", "deploy"): (30, 60, 90, 1800, 5),
    ("long", "read"): (60, 300, 360, 1800, 3),
    ("long", "modify"): (120, 600, 720, 3600, 3),
    ("long", "deploy"): (300, 1800, 2160, 7200, 3),
}


@pytest.fixture
def policies(db: Any) -> None:
    """The nine seeded rows (a transactional test elsewhere may have flushed the seed)."""
    for (sla, action), (step, execution, lease, approval, attempts) in POLICIES.items():
        TimeoutPolicyFactory(
            sla_class=sla,
            action_class=action,
            step_timeout_seconds=step,
            execution_timeout_seconds=execution,
            lease_timeout_seconds=lease,
            approval_timeout_seconds=approval,
            max_attempts=attempts,
        )


@pytest.fixture
def live_worker(db: Any) -> Any:
    return WorkerHeartbeatFactory(worker_id="cluster:test-host:4242", hostname="test-host", pid=4242)


@pytest.fixture
def stale_worker(db: Any) -> Any:
    old = timezone.now() - timezone.timedelta(minutes=5)
    return WorkerHeartbeatFactory(worker_id="cluster:gone:1", started_at=old, last_seen_at=old)
