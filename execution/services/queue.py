"""The domain moves of the queue of docs/contract.md#queue-and-workers on ``execution_queue``: enqueue, a
fresh item, back-off.

Claims, leases and the end of an attempt are the worker's statements
(execution/worker/store.py). Our table is the truth about order and attempts; django-q2
only carries wake-ups (docs/engine.md).
"""

from __future__ import annotations

import logging
import random
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from execution.enums import ExecutionStatus, QueueStatus
from execution.models import Execution, QueueItem, StoredPolicy
from execution.services.transition import transition
from execution.worker.wake import request_wake

logger = logging.getLogger(__name__)


def policy_for(execution: Execution) -> StoredPolicy:
    """The timeout policy stored on the execution at submission (docs/contract.md#queue-and-workers)."""
    return StoredPolicy.from_json(execution.timeout_policy)


def queue_enqueue(*, execution: Execution, priority: int | None = None, actor: Any = None) -> QueueItem:
    """Move an approved execution to ``queued`` and (re)create its queue item; the clusters
    are woken when it commits."""
    with transaction.atomic():
        execution = transition(
            execution, ExecutionStatus.QUEUED, actor=actor, expected_from=ExecutionStatus.APPROVED
        )
        item = _queue_item_reset(execution=execution, priority=priority)
        request_wake()  # a NOTIFY: delivered when this transaction commits
    return item


def _queue_item_reset(*, execution: Execution, priority: int | None = None) -> QueueItem:
    """A fresh pending item with fresh attempts, from the execution's policy."""
    policy = policy_for(execution)
    now = timezone.now()
    item, _ = QueueItem.objects.update_or_create(
        execution=execution,
        defaults={
            "tenant_id": execution.tenant_id,
            "environment": execution.environment,
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


def backoff_seconds(attempt: int) -> float:
    """Exponential back-off with full jitter on the upper half: base * 2^(attempt-1)."""
    base = settings.RETRY_BACKOFF_BASE_SECONDS
    cap = settings.RETRY_BACKOFF_MAX_SECONDS
    delay = min(cap, base * (2 ** max(0, attempt - 1)))
    return delay / 2 + random.uniform(0, delay / 2)
