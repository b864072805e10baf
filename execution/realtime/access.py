"""Who may watch what (docs/contract.md#rbac, docs/contract.md#live-progress): any member of the execution's
tenant, whatever the role.

Kept tiny on purpose; the API's selectors own the general RBAC queries.
"""

from __future__ import annotations

from typing import Any

from execution.enums import Role
from execution.models import Execution, Membership
from execution.selectors import tenant_ids_of

CANCEL_ROLES = frozenset({Role.OPERATOR, Role.DEPLOYER, Role.ADMIN})


def watchable_tenant_ids(user: Any) -> list[int]:
    return tenant_ids_of(user)


def can_watch_tenant(user: Any, tenant_id: int) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    return Membership.objects.filter(user=user, tenant_id=tenant_id).exists()


def can_cancel(user: Any, execution: Execution) -> bool:
    """Page-level check for showing the cancel button; the cancel service has the last word."""
    if not getattr(user, "is_authenticated", False):
        return False
    if execution.actor_id == user.pk:
        return Membership.objects.filter(user=user, tenant_id=execution.tenant_id).exists()
    return Membership.objects.filter(
        user=user, tenant_id=execution.tenant_id, role__in=list(CANCEL_ROLES)
    ).exists()
