"""django-q2 task adapters (scheduled in opsconductor/schedules.py)."""

from __future__ import annotations

from approvals.services import approvals_expire


def expire_approvals() -> int:
    """The expiry sweeper: returns how many approvals it expired."""
    return approvals_expire()
