"""``execution_cancel`` (docs/contract.md#cancellation): one cancel service for the API, pages, admin and
command."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from execution.enums import FINISHED_STATUSES, ActorType, ApprovalState, ExecutionStatus, QueueStatus
from execution.errors import AlreadyFinished
from execution.models import Execution, QueueItem
from execution.services.events import event_record
from execution.services.transition import steps_never_run, transition
from execution.worker.locks import locks_unwait

CANCEL_REASON_MAX = 500
NOT_STARTED = frozenset({ExecutionStatus.PENDING_APPROVAL, ExecutionStatus.APPROVED, ExecutionStatus.QUEUED})


def execution_cancel(*, execution: Execution, actor: Any = None, reason: str = "") -> Execution:
    """Cancel an execution; idempotent. ``reason`` (optional, at most CANCEL_REASON_MAX
    characters, masked like every event) is shown in the ``cancelled`` or
    ``cancel_requested`` event.

    Not yet running: ends ``cancelled`` at once, its queue item and approval closed, its
    steps ``cancelled``. Running: records the request (``cancel_requested`` event); the
    worker notices within a second, kills the current step and ends it ``cancelled``.
    Already cancelled: returned unchanged. Otherwise finished: ``AlreadyFinished`` naming the
    status (nothing to cancel; the adapters answer 409 / exit non-zero).
    """
    actor_type = ActorType.USER if actor is not None else ActorType.SYSTEM
    reason = reason.strip()[:CANCEL_REASON_MAX]
    with transaction.atomic():
        # The row lock orders us against the worker's own transitions.
        row = Execution.objects.select_for_update().get(pk=execution.pk)
        if row.status in FINISHED_STATUSES and row.status != ExecutionStatus.CANCELLED:
            raise AlreadyFinished(row.execution_id, row.status)
        if row.status in NOT_STARTED:
            now = timezone.now()
            row = transition(
                row,
                ExecutionStatus.CANCELLED,
                actor=actor,
                actor_type=actor_type,
                reason=f"cancelled before it ran: {reason}" if reason else "cancelled before it ran",
                details={"cancel_reason": reason} if reason else None,
                fields={"cancel_requested_at": now, "cancel_requested_by": actor},
            )
            QueueItem.objects.filter(execution=row, status=QueueStatus.PENDING).update(
                status=QueueStatus.COMPLETED, completed_at=now, last_error="cancelled"
            )
            steps_never_run(row.steps.exclude(status=ExecutionStatus.COMPLETED))
            _close_approval(row, actor, now)
            # A parked execution leaves its asset's line: the next in line may go.
            locks_unwait(execution_id=row.execution_id)
            return row
        if row.status == ExecutionStatus.RUNNING and row.cancel_requested_at is None:
            row.cancel_requested_at = timezone.now()
            row.cancel_requested_by = actor
            row.save(update_fields=["cancel_requested_at", "cancel_requested_by", "updated_at"])
            event_record(
                execution=row,
                event_type="cancel_requested",
                actor=actor,
                actor_type=actor_type,
                details={"reason": reason} if reason else None,
            )
        return row


def _close_approval(execution: Execution, actor: Any, now: Any) -> None:
    from approvals.models import Approval, GateApproval
    from execution.worker.locks import locks_release_all

    closed = {"state": ApprovalState.REJECTED, "responded_at": now, "approver_comment": "execution cancelled"}
    Approval.objects.filter(execution=execution, state=ApprovalState.PENDING).update(**closed)
    if execution.previous_status != ExecutionStatus.PENDING_APPROVAL:
        return
    gates = GateApproval.objects.filter(execution=execution, state=ApprovalState.PENDING)
    holding = gates.filter(hold_locks=True).exists()
    gates.update(**closed)
    if holding:
        # The gate kept the execution's locks while it waited (docs/approvals.md#gates).
        locks_release_all(execution=execution, reason="cancelled")
