"""The legal status transitions of docs/contract.md#state-machine (data only;
execution/services/transition.py applies them)."""

from __future__ import annotations

from execution.enums import ExecutionStatus as S

LEGAL_TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING_APPROVAL: frozenset({S.APPROVED, S.REJECTED, S.CANCELLED}),
    S.APPROVED: frozenset({S.QUEUED, S.RUNNING, S.CANCELLED}),
    # queued -> failed: it could not start (revoked right, plan no longer matches its
    # approval, lock wait limit, attempts used up by dead workers); it never ran.
    S.QUEUED: frozenset({S.RUNNING, S.CANCELLED, S.TIMEOUT, S.FAILED}),
    # running -> pending_approval: the attempt reached an approval gate step (docs/approvals.md#gates).
    S.RUNNING: frozenset(
        {S.COMPLETED, S.FAILED, S.CANCELLED, S.TIMEOUT, S.PARTIAL, S.QUEUED, S.PENDING_APPROVAL}
    ),
    # Only an operator's dead-letter requeue takes these back to the queue.
    S.FAILED: frozenset({S.QUEUED}),
    S.TIMEOUT: frozenset({S.QUEUED}),
    S.COMPLETED: frozenset(),
    S.REJECTED: frozenset(),
    S.CANCELLED: frozenset(),
    S.PARTIAL: frozenset(),
}


def is_legal(from_status: str, to_status: str) -> bool:
    return to_status in LEGAL_TRANSITIONS.get(from_status, frozenset())
