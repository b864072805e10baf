"""Which events notify, as one pure function of the event row (no query)."""

from __future__ import annotations

from typing import Any

from execution.enums import ActorType, ExecutionStatus
from monitoring.notifications.models import Kind

# Events whose type alone names the kind.
_BY_EVENT_TYPE = {
    "approval_requested": Kind.APPROVAL_REQUESTED,
    "dead_lettered": Kind.DEAD_LETTERED,
    "sla_violation": Kind.SLA_VIOLATION,
}
# Status changes (transition() events) by the status they reach.
_BY_STATUS = {
    ExecutionStatus.REJECTED: Kind.REJECTED,
    ExecutionStatus.FAILED: Kind.FAILED,
    ExecutionStatus.TIMEOUT: Kind.TIMEOUT,
}


def notification_kind(event: Any) -> str | None:
    """The notification kind of an ``ExecutionEvent``, or None when it notifies nobody.

    ``approved`` counts only when people approved it: the system's approval of a level-0
    plan is not news.
    """
    kind = _BY_EVENT_TYPE.get(event.event_type)
    if kind is not None:
        return kind.value
    if event.step_index is not None:
        return None  # a step's status (step_failed of one attempt), not the execution's
    if event.to_status == ExecutionStatus.APPROVED and event.actor_type == ActorType.USER:
        return Kind.APPROVED.value
    by_status = _BY_STATUS.get(event.to_status)
    return by_status.value if by_status is not None else None
