"""The plan hash an approval is bound to (docs/contract.md#approvals) and the worker's check before the first
step (docs/contract.md#queue-and-workers).

The hash is the canonical plan hash of execution/plans/hashing.py, the same function that
computes ``executions.plan_hash`` at submission.
"""

from __future__ import annotations

from typing import Any

from execution.plans.hashing import plan_hash


def plan_mismatch(
    *, snapshot: Any, submitted_hash: str, approval_level: int, approved_hashes: list[str]
) -> str | None:
    """None when ``snapshot`` is the plan that was submitted and approved, else why not.

    The snapshot is hashed again and compared with the hash taken at submission and, for a
    plan that needed approval, with the hash the approval was given for. A database trigger
    already refuses an UPDATE of the snapshot; this catches what bypassed it. The worker
    calls it with the claim's context (no query).
    """
    current = plan_hash(snapshot)
    if current != submitted_hash:
        return f"plan hash {current[:12]} differs from the submitted {submitted_hash[:12] or '(none)'}"
    for bound in approved_hashes:
        if bound != current:
            return f"plan hash {current[:12]} differs from the approved {bound[:12]}"
    if approval_level >= 1 and not approved_hashes:
        return "the execution needs an approval and has none"
    return None


def plan_matches_approval(*, execution: Any) -> str | None:
    """:func:`plan_mismatch` of an execution row (one query: its approval's hash)."""
    from approvals.models import Approval

    approved = Approval.objects.filter(execution_id=execution.execution_id).values_list(
        "plan_hash", flat=True
    )
    return plan_mismatch(
        snapshot=execution.plan_snapshot,
        submitted_hash=execution.plan_hash,
        approval_level=execution.approval_level,
        approved_hashes=list(approved),
    )
