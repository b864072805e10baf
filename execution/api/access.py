"""The REST door to the policy: look an object up, ``require`` the right, answer like docs/contract.md#rbac.

A user of another tenant gets a 404 (the object is simply unknown to them), a member
without the right a 403 with the reason; both refusals are recorded by ``require``.
"""

from __future__ import annotations

import uuid
from typing import Any

from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.request import Request

from execution import policy
from execution.models import DeadLetter, Execution


def uuid_or_404(value: Any, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound(f"no such {what}") from None


def rest_require(request: Request, right: policy.Right, *, what: str, **context: Any) -> None:
    try:
        policy.require(request.user, right, door="rest", **context)
    except policy.RightDenied as denied:
        if denied.hidden:
            raise NotFound(f"no such {what}") from None
        raise PermissionDenied({"detail": denied.reason, "reason": denied.reason}) from None


def execution_for(request: Request, execution_id: Any, right: policy.Right) -> Execution:
    """The execution ``execution_id`` if ``request.user`` holds ``right`` on it."""
    key = uuid_or_404(execution_id, "execution")
    execution = Execution.objects.select_related("tenant", "actor").filter(execution_id=key).first()
    if execution is None:
        raise NotFound("no such execution")
    rest_require(request, right, what="execution", execution=execution)
    return execution


def dead_letter_for(request: Request, dlq_id: Any, right: policy.Right) -> DeadLetter:
    """The dead letter ``dlq_id`` if ``request.user`` holds ``right`` on its execution."""
    key = uuid_or_404(dlq_id, "dead letter")
    entry = (
        DeadLetter.objects.select_related("execution", "execution__tenant", "execution__actor")
        .filter(dlq_id=key)
        .first()
    )
    if entry is None:
        raise NotFound("no such dead letter")
    rest_require(request, right, what="dead letter", execution=entry.execution)
    return entry
