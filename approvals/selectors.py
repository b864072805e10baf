"""Reads of the approval pages, admin and REST, on the one "visible to" of execution/selectors.py."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from approvals.models import AnyApproval, Approval, GateApproval
from execution.enums import ApprovalState, ExecutionStatus
from execution.models import Execution
from execution.selectors import approvals_visible_to, gate_approvals_visible_to


def approvals_pending_for(user: Any) -> QuerySet[Approval]:
    """Pending approvals of the user's tenants, soonest expiry first."""
    return (
        approvals_visible_to(user)
        .filter(state=ApprovalState.PENDING, execution__status=ExecutionStatus.PENDING_APPROVAL)
        .prefetch_related("votes__voter")
        .order_by("expires_at", "id")
    )


def gate_approvals_pending_for(user: Any) -> QuerySet[GateApproval]:
    """Pending gate approvals of the user's tenants, soonest expiry first."""
    return (
        gate_approvals_visible_to(user)
        .filter(state=ApprovalState.PENDING, execution__status=ExecutionStatus.PENDING_APPROVAL)
        .prefetch_related("votes__voter")
        .order_by("expires_at", "id")
    )


def pending_approvals_for(user: Any, *, limit: int) -> list[AnyApproval]:
    """Pending pre-run and gate approvals of the user's tenants, soonest expiry first."""
    both: list[AnyApproval] = [
        *approvals_pending_for(user)[:limit],
        *gate_approvals_pending_for(user)[:limit],
    ]
    return sorted(both, key=lambda a: a.expires_at)[:limit]


def open_approval(execution: Execution) -> AnyApproval | None:
    """The approval a vote on ``execution`` acts on (docs/approvals.md#gates): its pending
    gate's, else its pre-run one, else its last gate's (which then refuses the vote as
    decided); None when it never needed one."""
    gates = GateApproval.objects.filter(execution=execution).order_by("-step_index")
    pending = gates.filter(state=ApprovalState.PENDING).first()
    if pending is not None:
        return pending
    return Approval.objects.filter(execution=execution).first() or gates.first()


def approval_by_id(approval_id: Any) -> AnyApproval | None:
    """A pre-run or gate approval by its uuid (the pages' /approvals/<id>/)."""
    related = ("execution", "execution__tenant", "execution__actor", "approver")
    found = Approval.objects.select_related(*related).filter(approval_id=approval_id).first()
    return found or GateApproval.objects.select_related(*related).filter(approval_id=approval_id).first()
