"""django-q2 task adapters (scheduled in opsconductor/schedules.py)."""

from __future__ import annotations

from approvals.links import approval_links_forget
from approvals.services import approvals_expire


def expire_approvals() -> int:
    """The expiry sweeper: returns how many approvals it expired."""
    return approvals_expire()


def forget_spent_links() -> int:
    """Spent approval-link nonces past the links' age: returns how many were deleted."""
    return approval_links_forget()
