"""RBAC of §8. Issue 4 fills in the rules; the worker calls ``rbac_recheck_before_start``."""

from __future__ import annotations

from execution.models import Execution


def rbac_recheck_before_start(*, execution: Execution) -> str | None:
    """The worker's re-check before an execution starts: None if allowed, else the reason."""
    return None
