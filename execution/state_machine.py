"""The legal status transitions of docs/contract.md#state-machine and what a status change
writes (docs/contract.md#truth, one state-writing primitive).

Both writers are built from this module: ``transition()`` (execution/services/transition.py,
the ORM path) applies :func:`status_columns`; the worker's set-based statements
(execution/worker/store.py) embed :func:`status_set_sql`. The event a change writes is
named by :data:`EVENT_FOR_STATUS` for both. tests/execution/test_state_writes.py walks
every legal edge through both and compares the rows, the events and the notifications.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from execution.enums import FINISHED_STATUSES
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


# The event type written for a change into each status.
EVENT_FOR_STATUS: dict[str, str] = {
    S.APPROVED: "approved",
    S.REJECTED: "rejected",
    S.QUEUED: "queued",
    S.RUNNING: "started",
    S.COMPLETED: "completed",
    S.FAILED: "failed",
    S.CANCELLED: "cancelled",
    S.TIMEOUT: "timeout",
    S.PARTIAL: "partial",
    S.PENDING_APPROVAL: "gate_waiting",  # running -> pending_approval: docs/approvals.md#gates
}

# ``started_at``: set by the first entry into these (kept afterwards, a retry included).
STARTS = frozenset({S.RUNNING})
# ``completed_at``: set on entering a finished status; cleared by one that is not finished
# any more (back to the queue, running again, waiting at a gate).
UNFINISHES = frozenset({S.QUEUED, S.RUNNING, S.PENDING_APPROVAL})


def status_columns(current: str, to: str, *, started_at: datetime | None, now: datetime) -> dict[str, Any]:
    """The columns of ``executions`` a change ``current -> to`` writes (the ORM form)."""
    columns: dict[str, Any] = {
        "status": to,
        "previous_status": current,
        "status_changed_at": now,
        "updated_at": now,
    }
    if to in STARTS and started_at is None:
        columns["started_at"] = now
    if to in FINISHED_STATUSES:
        columns["completed_at"] = now
    elif to in UNFINISHES:
        columns["completed_at"] = None
    return columns


def _in(expr: str, statuses: frozenset[str]) -> str:
    return f"{expr} IN ({', '.join(repr(str(s)) for s in sorted(statuses))})"


def status_set_sql(to: str, *, previous: str = "e.status", via_running: bool = False) -> str:
    """The same columns as the assignments of ``UPDATE executions e SET ...`` (the set-based
    form): ``to`` is a SQL expression (a literal such as ``'running'`` or a parameter),
    ``previous`` the previous status' expression. ``via_running``: the statement records two
    edges, through running (the inline run), so the first one's ``started_at`` applies."""
    starts = "true" if via_running else _in(to, STARTS)
    return (
        f"status = {to}::execution_status, previous_status = {previous}::execution_status, "
        "status_changed_at = now(), updated_at = now(), "
        f"started_at = CASE WHEN {starts} THEN coalesce(e.started_at, now()) "
        "ELSE e.started_at END, "
        f"completed_at = CASE WHEN {_in(to, FINISHED_STATUSES)} THEN now() "
        f"WHEN {_in(to, UNFINISHES)} THEN NULL ELSE e.completed_at END"
    )
