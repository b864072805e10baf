"""``approval_request``: open the approval of a level >= 1 execution (docs/contract.md#approvals)."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from approvals.models import Approval
from execution.models import Execution, StoredPolicy
from execution.services.events import event_record


@transaction.atomic
def approval_request(*, execution: Execution, level: int, freeze_id: int | None = None) -> Approval:
    """Create the one approval row bound to the plan hash, expiring after the approval
    timeout of the policy stored at submission, and record an ``approval_requested`` event.
    ``freeze_id``: the change freeze that raised the level (docs/approvals.md#freezes)."""
    policy = StoredPolicy.from_json(execution.timeout_policy)
    now = timezone.now()
    approval = Approval.objects.create(
        execution=execution,
        approval_level=level,
        freeze_id=freeze_id,
        plan_hash=execution.plan_hash,
        requested_at=now,
        expires_at=now + timedelta(seconds=policy.approval_timeout_seconds),
    )
    event_record(
        execution=execution,
        event_type="approval_requested",
        details={
            "approval_level": level,
            "expires_at": approval.expires_at.isoformat(),
            **({"freeze_id": freeze_id} if freeze_id is not None else {}),
        },
    )
    return approval
