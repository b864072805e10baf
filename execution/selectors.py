"""Reads for the API, pages and commands: everything scoped to the user's tenants (docs/contract.md#rbac)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from execution.models import DeadLetter, Execution, ExecutionEvent, Membership


def tenant_ids_of(user: Any) -> list[int]:
    """Tenants ``user`` belongs to (any role)."""
    if not getattr(user, "is_authenticated", False):
        return []
    return list(Membership.objects.filter(user_id=user.pk).values_list("tenant_id", flat=True))


def membership_role(*, user: Any, tenant_id: int) -> str | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return (
        Membership.objects.filter(user_id=user.pk, tenant_id=tenant_id).values_list("role", flat=True).first()
    )


def executions_visible_to(user: Any) -> QuerySet[Execution]:
    """Executions of the user's tenants, newest first."""
    return (
        Execution.objects.filter(tenant_id__in=tenant_ids_of(user))
        .select_related("tenant", "actor")
        .order_by("-created_at", "-id")
    )


def execution_get_visible(*, user: Any, execution_id: Any) -> Execution | None:
    """The execution when it belongs to one of the user's tenants, else None (a 404)."""
    return executions_visible_to(user).filter(execution_id=execution_id).first()


def execution_events_after(*, execution: Execution, after: int | None) -> QuerySet[ExecutionEvent]:
    events = ExecutionEvent.objects.filter(execution_id=execution.execution_id).order_by("id")  # type: ignore[misc]
    return events.filter(id__gt=after) if after is not None else events


def dead_letters_visible_to(user: Any) -> QuerySet[DeadLetter]:
    return (
        DeadLetter.objects.filter(execution__tenant_id__in=tenant_ids_of(user))
        .select_related("execution", "execution__tenant", "requeued_by")
        .order_by("-failed_at", "-id")
    )
