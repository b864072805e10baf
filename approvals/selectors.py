"""Reads of the approval pages, admin and REST, on the one "visible to" of execution/selectors.py."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from approvals.models import Approval
from execution.enums import ApprovalState, ExecutionStatus
from execution.selectors import approvals_visible_to


def approvals_pending_for(user: Any) -> QuerySet[Approval]:
    """Pending approvals of the user's tenants, soonest expiry first."""
    return (
        approvals_visible_to(user)
        .filter(state=ApprovalState.PENDING, execution__status=ExecutionStatus.PENDING_APPROVAL)
        .prefetch_related("votes__voter")
        .order_by("expires_at", "id")
    )
