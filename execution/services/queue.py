"""The execution queue of §6 on ``execution_queue``: enqueue, claim, lease, retry, finish.

Our table is the truth about order and attempts; django-q2 only carries wake-ups (see
execution/tasks.py and docs/engine.md).
"""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from execution.enums import ExecutionStatus, QueueStatus
from execution.masking import active_secrets, mask_text
from execution.models import Execution, QueueItem, StoredPolicy
from execution.services.limits import AT_LIMIT_SQL, FULL_SCOPES_CTE, LIMITED_SQL, limits_claim_over
from execution.services.transition import transition

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claim:
    """A leased queue item: whoever holds ``lease_token`` may run the execution."""

    item_id: int
    execution_pk: int
    lease_token: uuid.UUID
    attempt: int
    max_attempts: int
    visibility_timeout_seconds: int


def policy_for(execution: Execution) -> StoredPolicy:
    """The timeout policy stored on the execution at submission (§6)."""
    return StoredPolicy.from_json(execution.timeout_policy)


def queue_enqueue(*, execution: Execution, priority: int | None = None, actor: Any = None) -> QueueItem:
    """Move an approved execution to ``queued`` and (re)create its queue item; wake workers
    after commit."""
    with transaction.atomic():
        execution = transition(
            execution, ExecutionStatus.QUEUED, actor=actor, expected_from=ExecutionStatus.APPROVED
        )
        item = _queue_item_reset(execution=execution, priority=priority)
    transaction.on_commit(queue_wake)
    return item


def _queue_item_reset(*, execution: Execution, priority: int | None = None) -> QueueItem:
    """A fresh pending item with fresh attempts, from the execution's policy."""
    policy = policy_for(execution)
    now = timezone.now()
    item, _ = QueueItem.objects.update_or_create(
        execution=execution,
        defaults={
            "priority": priority or execution.priority,
            "sla_class": execution.sla_class,
            "status": QueueStatus.PENDING,
            "lease_token": None,
            "lease_expires_at": None,
            "visibility_timeout_seconds": policy.lease_timeout_seconds,
            "attempt_count": 0,
            "max_attempts": policy.max_attempts,
            "last_error": "",
            "enqueued_at": now,
            "available_at": now,
            "dequeued_at": None,
            "completed_at": None,
            "attempt_started_at": None,
            "worker_id": "",
        },
    )
    return item


def queue_wake() -> None:
    """Ask the worker clusters to drain the queue (a django-q2 task; cheap when idle)."""
    from execution.tasks import wake_workers

    wake_workers()


# Claim by priority, then age, skipping rows another worker holds (index queue_claim_pending)
# and items whose tenant is at a concurrency limit (execution/services/limits.py).
CLAIM_SQL = f"""
WITH {FULL_SCOPES_CTE},
next AS (
    SELECT q.id FROM execution_queue q JOIN executions e ON e.execution_id = q.execution_id
    WHERE q.status = 'pending' AND (q.available_at IS NULL OR q.available_at <= now())
      AND NOT {AT_LIMIT_SQL}
    ORDER BY q.priority, q.enqueued_at, q.id
    LIMIT 1
    FOR UPDATE OF q SKIP LOCKED
)
UPDATE execution_queue q
SET status = 'processing', lease_token = %(token)s,
    lease_expires_at = now() + make_interval(secs => LEAST(%(lease)s, q.visibility_timeout_seconds)),
    attempt_count = q.attempt_count + 1, dequeued_at = now(), attempt_started_at = now(),
    worker_id = %(worker)s, updated_at = now()
FROM next, executions e
WHERE q.id = next.id AND e.execution_id = q.execution_id
RETURNING q.id, q.attempt_count, q.max_attempts, q.visibility_timeout_seconds, e.id,
          {LIMITED_SQL}, e.tenant_id, e.environment
"""  # noqa: S608 - constant fragments only
# A claim that lost the race for a tenant's last slot is rolled back and tried again.
CLAIM_TRIES = 3


def queue_claim(*, worker_id: str) -> Claim | None:
    """Lease the next runnable item (priority 1 first, then oldest) within the concurrency
    limits, or None."""
    for _ in range(CLAIM_TRIES):
        token = uuid.uuid4()
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(
                CLAIM_SQL, {"token": str(token), "lease": settings.LEASE_SECONDS, "worker": worker_id}
            )
            row = cur.fetchone()
            if row is None:
                return None
            item_id, attempt, max_attempts, visibility, execution_pk, limited, tenant_id, environment = row
            if limited and limits_claim_over(cursor=cur, tenant_id=tenant_id, environment=environment):
                transaction.set_rollback(True)  # someone took the last slot first
                continue
        return Claim(item_id, execution_pk, token, attempt, max_attempts, visibility)
    return None


def queue_heartbeat(*, claim: Claim) -> bool:
    """Push the lease forward, never past the attempt's visibility timeout. False = lost."""
    with connection.cursor() as cur:
        cur.execute(
            """
            UPDATE execution_queue
            SET lease_expires_at = LEAST(
                    now() + make_interval(secs => %s),
                    attempt_started_at + make_interval(secs => visibility_timeout_seconds)),
                updated_at = now()
            WHERE id = %s AND lease_token = %s AND status = 'processing'
              AND attempt_started_at + make_interval(secs => visibility_timeout_seconds) > now()
            """,
            [settings.LEASE_SECONDS, claim.item_id, str(claim.lease_token)],
        )
        return bool(cur.rowcount == 1)


def _owned(claim: Claim) -> Any:
    return QueueItem.objects.filter(
        pk=claim.item_id, lease_token=claim.lease_token, status=QueueStatus.PROCESSING
    )


def queue_complete(*, claim: Claim, status: str = QueueStatus.COMPLETED, error: str = "") -> bool:
    """Close the item (completed, or failed when dead-lettered). Compare-and-swap on the lease."""
    return bool(
        _owned(claim).update(
            status=status,
            completed_at=timezone.now(),
            lease_token=None,
            lease_expires_at=None,
            last_error=mask_text(error, active_secrets())[:2000],
            updated_at=timezone.now(),
        )
    )


def backoff_seconds(attempt: int) -> float:
    """Exponential back-off with full jitter on the upper half: base * 2^(attempt-1)."""
    base = float(getattr(settings, "RETRY_BACKOFF_BASE_SECONDS", 1.0))
    cap = float(getattr(settings, "RETRY_BACKOFF_MAX_SECONDS", 300.0))
    delay = min(cap, base * (2 ** max(0, attempt - 1)))
    return delay / 2 + random.uniform(0, delay / 2)


def queue_release(*, claim: Claim, delay_seconds: float, error: str = "", count_attempt: bool = True) -> bool:
    """Hand the item back to the queue after ``delay_seconds`` (retry or lock wait).

    ``count_attempt=False`` (a lock wait) gives the attempt back: waiting is not failing.
    """
    now = timezone.now()
    fields: dict[str, Any] = {
        "status": QueueStatus.PENDING,
        "lease_token": None,
        "lease_expires_at": None,
        "available_at": now + timedelta(seconds=delay_seconds),
        "attempt_started_at": None,
        "worker_id": "",
        "updated_at": now,
    }
    if error:
        fields["last_error"] = mask_text(error, active_secrets())[:2000]
    updated = _owned(claim).update(**fields)
    if updated and not count_attempt:
        from django.db.models import F

        QueueItem.objects.filter(pk=claim.item_id, attempt_count__gt=0).update(
            attempt_count=F("attempt_count") - 1
        )
    transaction.on_commit(queue_wake)  # runs at once outside a transaction
    return bool(updated)


def queue_requeue_running(
    *, execution: Execution, reason: str, delay_seconds: float, actor_type: str
) -> None:
    """running -> queued for a retry, with a ``retry_scheduled`` event (one transaction)."""
    transition(
        execution,
        ExecutionStatus.QUEUED,
        actor_type=actor_type,
        event_type="retry_scheduled",
        reason=reason,
        details={"delay_seconds": round(delay_seconds, 3)},
        expected_from=ExecutionStatus.RUNNING,
    )


def queue_depth() -> int:
    return QueueItem.objects.filter(status=QueueStatus.PENDING).count()
