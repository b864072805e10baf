"""Reads for the approval pages, admin and REST: everything scoped to the user's tenants."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from approvals.models import Approval
from execution import selectors as execution_selectors
from execution.enums import ApprovalState, ExecutionStatus, Role
from execution.models import DeadLetter, Execution, Membership


def tenant_ids_of(user: Any) -> list[int]:
    """The tenants ``user`` belongs to (any role): the shared selector of execution/selectors.py."""
    return execution_selectors.tenant_ids_of(user)


def user_has_role(*, user: Any, tenant_id: int, roles: tuple[str, ...]) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    return Membership.objects.filter(user_id=user.pk, tenant_id=tenant_id, role__in=roles).exists()


def approvals_visible_to(user: Any) -> QuerySet[Approval]:
    return Approval.objects.filter(execution__tenant_id__in=tenant_ids_of(user)).select_related(
        "execution", "execution__tenant", "execution__actor", "approver"
    )


def approvals_pending_for(user: Any) -> QuerySet[Approval]:
    """Pending approvals of the user's tenants, soonest expiry first."""
    return (
        approvals_visible_to(user)
        .filter(state=ApprovalState.PENDING, execution__status=ExecutionStatus.PENDING_APPROVAL)
        .prefetch_related("votes__voter")
        .order_by("expires_at", "id")
    )


def execution_visible_to(*, user: Any, execution_id: Any) -> Execution | None:
    """The execution if it belongs to one of the user's tenants (else None: a 404, never a 403)."""
    return (
        Execution.objects.filter(execution_id=execution_id, tenant_id__in=tenant_ids_of(user))
        .select_related("tenant", "actor")
        .first()
    )


def dead_letters_visible_to(user: Any) -> QuerySet[DeadLetter]:
    """Open (not archived) dead letters of the user's tenants, newest failure first."""
    return (
        DeadLetter.objects.filter(execution__tenant_id__in=tenant_ids_of(user), archived=False)
        .select_related("execution", "execution__tenant", "requeued_by")
        .order_by("requeued", "-failed_at")
    )


def tenant_ids_where_admin(user: Any) -> set[int]:
    if not getattr(user, "is_authenticated", False):
        return set()
    return set(
        Membership.objects.filter(user_id=user.pk, role=Role.ADMIN).values_list("tenant_id", flat=True)
    )
