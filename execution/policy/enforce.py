"""``require``: decide, and on a refusal leave the trace docs/contract.md#rbac asks for, then raise.

A refusal about an execution is an ``rbac_violation`` event on it; one where no execution
exists yet (submission, a tenant stream, secrets, members) is an ``AuditLog`` row. Both are
written in their own statement, so a door that answers 403 keeps the record: call
``require`` outside any transaction the refusal rolls back.
"""

from __future__ import annotations

from typing import Any

from execution.errors import PermissionDenied
from execution.models import AuditLog, Execution, Tenant
from execution.policy.rules import Decision, Right, decide


class RightDenied(PermissionDenied):
    """``user`` may not exercise ``right``. ``hidden``: the user is no member of the tenant,
    so doors answer as if the object did not exist (404, 4404), never 403."""

    def __init__(self, right: Right, decision: Decision) -> None:
        super().__init__(decision.reason)
        self.right = right
        self.reason = decision.reason
        self.code = decision.code
        self.hidden = decision.code == "not_member"


def rbac_audit(
    *,
    tenant: Tenant | int | None,
    actor: Any,
    reason: str,
    event_type: str = "rbac_violation",
    details: dict[str, Any] | None = None,
) -> AuditLog:
    """An audit row for a decision where no execution exists (yet)."""
    return AuditLog.objects.create(
        tenant_id=tenant.pk if isinstance(tenant, Tenant) else tenant,
        actor=actor if getattr(actor, "pk", None) else None,
        event_type=event_type,
        reason=reason,
        details=details or {},
    )


def rbac_violation_record(*, execution: Execution, actor: Any, reason: str, action: str) -> None:
    """An ``rbac_violation`` event on the execution a denied request was about."""
    from execution.services.events import event_record

    event_record(
        execution=execution,
        event_type="rbac_violation",
        actor=actor,
        details={"reason": reason, "action": action},
    )


def require(
    user: Any, right: Right, *, door: str = "", details: dict[str, Any] | None = None, **context: Any
) -> Decision:
    """:func:`decide`; on a refusal record it (event or audit row) and raise RightDenied.

    ``door`` names where the request came in (rest, page, admin, command, websocket) in the
    record, ``details`` adds to an audit row. Non-strict submit warnings are written as
    ``rbac_warning`` audit rows.
    """
    decision = decide(user, right, door=door, **context)
    audit_details = {"right": str(right), "door": door, **(details or {})}
    execution: Execution | None = context.get("execution")
    tenant = context.get("tenant") or (execution.tenant_id if execution is not None else None)
    actor = user if getattr(user, "pk", None) else None
    if decision.warning:
        rbac_audit(
            tenant=tenant,
            actor=actor,
            reason=decision.warning,
            event_type="rbac_warning",
            details=audit_details,
        )
    if decision.allowed:
        return decision
    if actor is not None:
        if execution is not None:
            rbac_violation_record(execution=execution, actor=actor, reason=decision.reason, action=str(right))
        else:
            rbac_audit(tenant=tenant, actor=actor, reason=decision.reason, details=audit_details)
    raise RightDenied(Right(right), decision)
