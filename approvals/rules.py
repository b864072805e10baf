"""Change freezes (docs/approvals.md#freezes), consulted by the submission.

A freeze of a tenant's environment, while it lasts, refuses a submission there or raises its
approval level; the approval then remembers the freeze, and no standard change applies to it.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from approvals.models import ChangeFreeze
from execution.errors import Conflict
from execution.models import Tenant


class ChangeFrozen(Conflict):
    """The environment is frozen: the submission is refused (409 ``change_freeze``)."""

    def __init__(self, freeze: ChangeFreeze) -> None:
        super().__init__(
            f"{freeze.environment} is frozen until {freeze.ends_at.isoformat()}: {freeze.reason}"
        )
        self.freeze = freeze


def freezes_active(*, tenant_ids: list[int], now: datetime | None = None) -> list[ChangeFreeze]:
    """Freezes in force now in these tenants (the home page shows them)."""
    now = now or timezone.now()
    # Index freezes_tenant_env_end: WHERE tenant_id IN (...) AND ends_at > now.
    return list(
        ChangeFreeze.objects.filter(tenant_id__in=tenant_ids, ends_at__gt=now, starts_at__lte=now)
        .select_related("tenant")
        .order_by("ends_at", "id")
    )


def freeze_for(*, tenant: Tenant, environment: str, now: datetime | None = None) -> ChangeFreeze | None:
    """The freeze that decides a submission now: a refusing one first, else the one that
    raises the level the most."""
    now = now or timezone.now()
    freezes = list(
        ChangeFreeze.objects.filter(
            tenant=tenant, environment=environment, starts_at__lte=now, ends_at__gt=now
        ).order_by("-approval_level", "id")
    )
    refusing = [f for f in freezes if f.effect == ChangeFreeze.Effect.REFUSE]
    chosen = refusing or freezes
    return chosen[0] if chosen else None


def freeze_apply(*, tenant: Tenant, environment: str, level: int) -> tuple[int, ChangeFreeze | None]:
    """The approval level a submission needs under the freeze in force, and that freeze
    (None: no freeze). Raises :class:`ChangeFrozen` when the freeze refuses."""
    freeze = freeze_for(tenant=tenant, environment=environment)
    if freeze is None:
        return level, None
    if freeze.effect == ChangeFreeze.Effect.REFUSE:
        raise ChangeFrozen(freeze)
    return max(level, freeze.approval_level), freeze
