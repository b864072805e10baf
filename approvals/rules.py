"""Change freezes (docs/approvals.md#freezes), consulted by the submission.

A freeze of a tenant's environment, while it lasts, refuses a submission there or raises its
approval level; the approval then remembers the freeze, and no standard change applies to it.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from approvals.models import ChangeFreeze
from execution.errors import Conflict


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


# The freeze that decides a submission now: a refusing one first, else the one that raises the
# level the most (the oldest of equals). A LATERAL subquery of the submission's identity read
# (execution/services/submit_read.py), which names the tenant ``t`` and passes
# %(environment)s and %(now)s. Index freezes_tenant_env_end: tenant_id = ? AND environment = ?
# AND ends_at > now.
FREEZE_COLUMNS = (
    "id",
    "tenant_id",
    "environment",
    "starts_at",
    "ends_at",
    "effect",
    "approval_level",
    "reason",
    "created_at",
)
FREEZE_DECIDING_SQL = f"""SELECT {", ".join(FREEZE_COLUMNS)}
    FROM {ChangeFreeze._meta.db_table}
    WHERE tenant_id = t.id AND environment = %(environment)s AND starts_at <= %(now)s AND ends_at > %(now)s
    ORDER BY effect = 'refuse' DESC, approval_level DESC, id
    LIMIT 1"""  # noqa: S608 - column and table names only


def freeze_apply(*, freeze: ChangeFreeze, level: int) -> int:
    """The approval level a submission needs under ``freeze`` (the one
    :data:`FREEZE_DECIDING_SQL` chose). Raises :class:`ChangeFrozen` when the freeze refuses."""
    if freeze.effect == ChangeFreeze.Effect.REFUSE:
        raise ChangeFrozen(freeze)
    return max(level, freeze.approval_level)
