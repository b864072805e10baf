"""Four eyes count people (docs/security.md#four-eyes): who may never vote on an execution,
whatever their role. Asked by the vote rule of :mod:`execution.policy.rules`, so every door
(REST, pages, admin, ``manage.py approve|reject``) refuses the same votes.

- The requester is the human behind the execution: its actor, and with submission on
  behalf also the account that submitted it (``submitted_by``). Neither votes.
- A runbook launch's plan was written by the author of its version: they do not vote on it
  either (another admin who rewrites a runbook that a trigger or schedule fires as its
  owner is not a second pair of eyes on their own plan).
- A voter's approver or admin role must predate the submission: an approver added (or
  promoted) after the execution was submitted -- a sockpuppet made to be the second pair
  of eyes -- does not vote on it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Exists, OuterRef, Q

from execution.models import Membership


def requester_refusal(*, user: Any, execution: Any) -> str:
    """Why ``user`` is (one of) the requester(s) of ``execution`` and may not vote; "" if not."""
    if execution.actor_id == user.pk:
        return "the requester cannot vote on their own execution"
    if execution.submitted_by_id is not None and execution.submitted_by_id == user.pk:
        return "the account that submitted this execution on behalf of another member cannot vote on it"
    if (execution.runbook or {}).get("author_id") == user.pk:
        return "the author of the runbook version this execution runs cannot vote on it"
    return ""


def role_too_recent(*, user: Any, execution: Any, role_since: datetime | None) -> str:
    """Why ``user``'s voting role is too recent to vote on ``execution``; "" when it predates
    the submission (``role_since`` None: not read, nothing to say)."""
    if role_since is None or execution.created_at is None or role_since < execution.created_at:
        return ""
    return (
        f"{user.get_username()} holds their role since {role_since.isoformat()}, after the execution "
        f"was submitted ({execution.created_at.isoformat()}): only those who held the approver or "
        "admin role before the submission vote on it"
    )


def four_eyes_barred(user: Any, *, path: str = "execution") -> Q:
    """The set form of both rules, for lists of approvals (``path``: the lookup to their
    execution): the executions ``user`` may not vote on whatever their role. One condition,
    no query of its own."""
    too_recent = Membership.objects.filter(
        user_id=user.pk,
        tenant_id=OuterRef(f"{path}__tenant_id"),
        role_since__gte=OuterRef(f"{path}__created_at"),
    )
    return (
        Q(**{f"{path}__actor_id": user.pk})
        | Q(**{f"{path}__submitted_by_id": user.pk})
        | Q(**{f"{path}__runbook__author_id": user.pk})
        | Q(Exists(too_recent))
    )
