"""The reaper (docs/contract.md#queue-and-workers): items whose lease expired go back to the queue; expired
locks are freed.

A lease expires when its worker died (SIGKILL, lost machine, cut off from the database),
held the item past the policy's lease timeout, or its attempt crashed (the worker marks the
item and lets the lease go). Each is a fault of the platform (docs/contract.md#truth): the
attempt counts; past ``max_attempts`` the execution is dead-lettered naming the fault. The
execution resumes at the first step that did not complete.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from execution.enums import ActorType, DlqFault, ExecutionStatus, QueueStatus
from execution.models import Execution, QueueItem
from execution.services.dlq import dlq_record
from execution.services.queue import backoff_seconds
from execution.services.transition import execution_fail_unstarted, transition
from execution.worker.locks import locks_release_all, locks_release_expired
from execution.worker.wake import request_wake

logger = logging.getLogger(__name__)

# What a worker writes into its item's ``last_error`` when an attempt crashed
# (execution/worker/runtime.py), read back here to name the fault.
CRASHED = {
    DlqFault.DATABASE_UNREACHABLE: "attempt crashed: database unreachable",
    DlqFault.WORKER_CRASHED: "attempt crashed",
}


def lease_fault(item: QueueItem) -> tuple[str, str]:
    """The platform fault behind an expired lease, and its text."""
    worker = item.worker_id or "unknown"
    for fault, prefix in CRASHED.items():
        if item.last_error.startswith(prefix):
            return fault, f"worker {worker}: {item.last_error}"  # no longer the prefix: read once
    started, expires = item.attempt_started_at, item.lease_expires_at
    if started and expires and expires >= started + timedelta(seconds=item.visibility_timeout_seconds):
        # The heartbeat pushed the lease up to its cap: the worker was alive but over its time.
        return DlqFault.LEASE_TIMEOUT, (
            f"lease expired: worker {worker} held it past the lease timeout "
            f"({item.visibility_timeout_seconds}s)"
        )
    return DlqFault.WORKER_LOST, f"lease expired: worker {worker} stopped heartbeating (lost)"


def reap_expired() -> dict[str, int]:
    """Return expired leases to the queue (or the DLQ) and free expired locks."""
    returned = dead = 0
    while True:
        with transaction.atomic():
            # One item per transaction; SKIP LOCKED lets several reapers run at once.
            item = (
                QueueItem.objects.select_for_update(skip_locked=True)
                .filter(status=QueueStatus.PROCESSING, lease_expires_at__lt=timezone.now())
                .order_by("lease_expires_at")
                .first()
            )
            if item is None:
                break
            execution = Execution.objects.get(execution_id=item.execution_id)
            fault, error = lease_fault(item)
            locks_release_all(execution=execution, reason="lease expired")
            if item.attempt_count >= item.max_attempts:
                if execution.status == ExecutionStatus.QUEUED:
                    # Claimed but the worker died before it started: it never ran.
                    execution_fail_unstarted(execution=execution, reason=error, actor_type=ActorType.SYSTEM)
                    dlq_record(execution=execution, reason=fault, last_error=error)
                elif execution.status == ExecutionStatus.RUNNING:
                    transition(
                        execution,
                        ExecutionStatus.FAILED,
                        actor_type=ActorType.SYSTEM,
                        reason=error,
                        fields={"error_message": error},
                    )
                    dlq_record(execution=execution, reason=fault, last_error=error)
                item.status = QueueStatus.FAILED
                item.completed_at = timezone.now()
                dead += 1
            else:
                delay = backoff_seconds(item.attempt_count)
                if execution.status == ExecutionStatus.RUNNING:
                    transition(
                        execution,
                        ExecutionStatus.QUEUED,
                        actor_type=ActorType.SYSTEM,
                        event_type="retry_scheduled",
                        reason=error,
                        details={"delay_seconds": round(delay, 3), "fault": fault},
                    )
                item.status = QueueStatus.PENDING
                item.available_at = timezone.now() + timedelta(seconds=delay)
                returned += 1
            item.lease_token = None
            item.lease_expires_at = None
            item.attempt_started_at = None
            item.last_error = error
            item.worker_id = ""
            item.save()
    freed = locks_release_expired()
    if returned:
        request_wake()
    if returned or dead or freed:
        logger.info("reaper: %s returned, %s dead-lettered, %s locks freed", returned, dead, freed)
    return {"returned": returned, "dead_lettered": dead, "locks_freed": freed}
