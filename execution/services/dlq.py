"""The dead-letter queue (docs/contract.md#queue-and-workers): entries, operator requeue and archive."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from execution.enums import ActorType, ExecutionStatus
from execution.errors import Conflict
from execution.masking import mask_data, mask_text, secrets_of
from execution.models import DeadLetter, Execution, QueueItem
from execution.services.events import event_record
from execution.services.transition import transition
from execution.worker.wake import request_wake


def dlq_record(
    *, execution: Execution, reason: str, last_error: str, details: dict[str, Any] | None = None
) -> DeadLetter:
    """Create (or refresh, after an earlier requeue) the execution's dead-letter entry."""
    values = secrets_of(execution.execution_id)
    last_error = mask_text(last_error, values)
    details = mask_data(details or {}, values)
    item = QueueItem.objects.filter(execution=execution).first()
    entry, _ = DeadLetter.objects.update_or_create(
        execution=execution,
        defaults={
            "failure_reason": reason,
            "failure_details": details,
            "attempt_count": item.attempt_count if item else 0,
            "last_error": last_error[:4000],
            "original_queue_id": item.queue_id if item else None,
            "sla_class": execution.sla_class,
            "failed_at": timezone.now(),
            "requeued": False,
            "requeued_at": None,
            "requeued_by": None,
            "archived": False,
            "archived_at": None,
        },
    )
    event_record(
        execution=execution,
        event_type="dead_lettered",
        actor_type=ActorType.WORKER,
        details={"reason": reason, "attempts": entry.attempt_count},
        error_message=last_error[:2000],
    )
    return entry


def dlq_requeue(*, entry: DeadLetter, operator: Any) -> Execution:
    """Put a dead-lettered execution back in the queue with fresh attempts (who and when
    recorded on the entry and in a ``requeued`` event). It resumes at the first step that
    did not complete."""
    from execution.services.queue import _queue_item_reset

    with transaction.atomic():
        # Compare-and-swap: two operators clicking at once requeue it once.
        claimed = DeadLetter.objects.filter(pk=entry.pk, requeued=False, archived=False).update(
            requeued=True, requeued_at=timezone.now(), requeued_by=operator
        )
        if not claimed:
            raise Conflict("this dead letter was already requeued or archived")
        execution = transition(
            Execution.objects.get(execution_id=entry.execution_id),
            ExecutionStatus.QUEUED,
            actor=operator,
            actor_type=ActorType.USER,
            event_type="requeued",
            reason="requeued from the dead-letter queue",
            expected_from=frozenset({ExecutionStatus.FAILED, ExecutionStatus.TIMEOUT}),
            fields={"cancel_requested_at": None, "error_message": ""},
        )
        _queue_item_reset(execution=execution)
        request_wake()
    return execution


def dlq_archive(*, entry: DeadLetter, operator: Any) -> DeadLetter:
    """Mark an entry handled without running it again."""
    updated = DeadLetter.objects.filter(pk=entry.pk, requeued=False, archived=False).update(
        archived=True, archived_at=timezone.now()
    )
    if not updated:
        raise Conflict("this dead letter was already requeued or archived")
    entry.refresh_from_db()
    return entry
