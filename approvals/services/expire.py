"""``approvals_expire``: the sweeper that ends overdue approvals (docs/contract.md#approvals)."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from approvals.gates import gate_failed
from approvals.models import AnyApproval, Approval, GateApproval
from execution.enums import ActorType, ApprovalState, ExecutionStatus
from execution.models import Execution
from execution.services.events import event_record
from execution.services.transition import transition

logger = logging.getLogger(__name__)


def approvals_expire(*, now: datetime | None = None, limit: int = 500) -> int:
    """Mark pending approvals (pre-run and gates) past ``expires_at`` as ``expired`` and end
    their executions ``rejected`` (an ``approval_expired`` event, then the transition by the
    system).

    Each approval is handled in its own transaction; returns how many were expired.
    """
    now = now or timezone.now()
    expired = 0
    model: type[AnyApproval]
    for model in (Approval, GateApproval):
        # Index (approvals|gate_approvals)_state_expiry: WHERE state = 'pending' AND expires_at <= now
        # ORDER BY expires_at.
        overdue = list(
            model.objects.filter(state=ApprovalState.PENDING, expires_at__lte=now)
            .order_by("expires_at")
            .values_list("pk", "execution__pk")[:limit]
        )
        for approval_pk, execution_pk in overdue:
            if _expire_one(model=model, approval_pk=approval_pk, execution_pk=execution_pk, now=now):
                expired += 1
    return expired


def _expire_one(*, model: type[AnyApproval], approval_pk: int, execution_pk: int, now: datetime) -> bool:
    with transaction.atomic():
        # Same lock order as approval_vote (execution, then approval): a vote in flight either
        # finishes first (and the swap below finds the approval decided) or waits for us.
        execution = Execution.objects.select_for_update().get(pk=execution_pk)
        # Compare-and-swap: only a still-pending, still-overdue approval expires, once.
        changed = model.objects.filter(
            pk=approval_pk, state=ApprovalState.PENDING, expires_at__lte=now
        ).update(state=ApprovalState.EXPIRED, responded_at=now, updated_at=now)
        if not changed:
            return False
        approval = model.objects.get(pk=approval_pk)
        event_record(
            execution=execution,
            event_type="approval_expired",
            actor_type=ActorType.SYSTEM,
            details={
                "approval_id": str(approval.approval_id),
                "expires_at": approval.expires_at.isoformat(),
                "approvals": approval.votes.filter(decision="approve").count(),
                "approval_level": approval.approval_level,
                **({"step_index": approval.step_index} if isinstance(approval, GateApproval) else {}),
            },
        )
        if execution.status == ExecutionStatus.PENDING_APPROVAL:
            if isinstance(approval, GateApproval):
                gate_failed(gate=approval, execution=execution, reason="approval gate expired")
            transition(
                execution,
                ExecutionStatus.REJECTED,
                actor_type=ActorType.SYSTEM,
                reason="approval expired",
                expected_from=ExecutionStatus.PENDING_APPROVAL,
                fields={"error_message": "approval expired before enough approvers voted"},
            )
        else:
            logger.info("approval %s expired; execution already %s", approval.approval_id, execution.status)
    return True
