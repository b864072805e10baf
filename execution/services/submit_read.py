"""The submission's identity read: the tenant named by the request, the submitter's membership
in it (and whether the account is active), the change freeze in force for the plan's
environment and the plan as jsonb gives it back (``plan_normalize``), in ONE statement.

Three round trips did this before, two of them ORM queries whose building cost far more
Python than PostgreSQL spent running them (docs/engine.md#submission-cost). The decisions
stay where they are: the policy decides on the membership through ``decide()``
(``membership_known`` builds its form), the freeze's choice and effect are
approvals/rules.py's (``FREEZE_DECIDING_SQL``, ``freeze_apply``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from approvals.models import ChangeFreeze
from approvals.rules import FREEZE_COLUMNS, FREEZE_DECIDING_SQL
from execution.models import Membership, Tenant
from execution.plans.hashing import PLAN_NORMAL_SQL, plan_normal_param, plan_normal_value
from execution.policy import membership_known
from execution.policy.rules import MemberRead

_TENANT_COLUMNS = ("id", "slug", "name", "created_at")

# One row when the tenant exists (no row: unknown tenant); the membership's columns are NULL
# for a non-member, the freeze's when none is in force.
_SQL = f"""SELECT {", ".join(f"t.{c}" for c in _TENANT_COLUMNS)},
       m.role, m.can_submit_on_behalf, m.role_since, u.is_active,
       {", ".join(f"f.{c}" for c in FREEZE_COLUMNS)},
       {PLAN_NORMAL_SQL}
FROM {Tenant._meta.db_table} t
LEFT JOIN {Membership._meta.db_table} m ON m.tenant_id = t.id AND m.user_id = %(user)s
LEFT JOIN {get_user_model()._meta.db_table} u ON u.id = m.user_id
LEFT JOIN LATERAL ({FREEZE_DECIDING_SQL}) f ON true
WHERE t.slug = %(slug)s"""  # noqa: S608 - table and column names only; the values are parameters

_FREEZE_AT = len(_TENANT_COLUMNS) + 4


@dataclass(frozen=True)
class SubmissionRead:
    # None: no tenant of that slug (answered like a non-member).
    tenant: Tenant | None
    # The submitter's membership in the form ``decide()`` takes.
    membership: MemberRead
    # The freeze in force that decides the submission, or None.
    freeze: ChangeFreeze | None
    # The plan as stored (the hash and the idempotency key are taken over it); None with no tenant.
    plan: Any = None


def submission_read(*, submitter: Any, tenant_slug: str, plan: Any) -> SubmissionRead:
    """The tenant ``tenant_slug``, ``submitter``'s membership in it, the freeze of the
    (validated) ``plan``'s environment in force now and the plan normalised, in one round trip."""
    with connection.cursor() as cursor:
        cursor.execute(
            _SQL,
            {
                "user": submitter.pk,
                "slug": tenant_slug,
                "environment": plan["environment"],
                "now": timezone.now(),
                "plan": plan_normal_param(plan),
            },
        )
        row = cursor.fetchone()
    if row is None:
        return SubmissionRead(tenant=None, membership=(None, True), freeze=None)
    tenant = Tenant.from_db(connection.alias, _TENANT_COLUMNS, row[: len(_TENANT_COLUMNS)])
    role, on_behalf, role_since, active = row[len(_TENANT_COLUMNS) : _FREEZE_AT]
    membership = membership_known(
        tenant=tenant,
        role=role,
        # A non-member's account is not read: only a membership's deactivated user is refused here.
        active=True if role is None else bool(active),
        can_submit_on_behalf=bool(on_behalf),
        role_since=role_since,
    )
    freeze = None
    if row[_FREEZE_AT] is not None:
        freeze = ChangeFreeze.from_db(connection.alias, FREEZE_COLUMNS, row[_FREEZE_AT:-1])
        freeze.tenant = tenant
    return SubmissionRead(
        tenant=tenant, membership=membership, freeze=freeze, plan=plan_normal_value(row[-1])
    )
