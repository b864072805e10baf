"""The plan hash an approval is bound to (§9) and the worker's check before the first step (§6).

The hash is the canonical plan hash of execution/plans/hashing.py, the same function that
computes ``executions.plan_hash`` at submission.
"""

from __future__ import annotations

from typing import Any

from execution.plans.hashing import plan_hash


def plan_matches_approval(*, execution: Any) -> str | None:
    """None when the stored plan is the plan that was submitted and approved, else why not.

    The snapshot is hashed again and compared with the hash taken at submission and, for a
    plan that needed approval, with the hash the approval was given for. A database trigger
    already refuses an UPDATE of the snapshot; this catches what bypassed it.
    """
    from approvals.models import Approval

    current = plan_hash(execution.plan_snapshot)
    if current != execution.plan_hash:
        return f"plan hash {current[:12]} differs from the submitted {execution.plan_hash[:12] or '(none)'}"
    approved = Approval.objects.filter(execution_id=execution.execution_id).values_list(
        "plan_hash", flat=True
    )
    for bound in approved:
        if bound != current:
            return f"plan hash {current[:12]} differs from the approved {bound[:12]}"
    if execution.approval_level >= 1 and not approved:
        return "the execution needs an approval and has none"
    return None
