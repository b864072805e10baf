"""Approval gates inside a plan (docs/approvals.md#gates).

A step of type ``approval`` parks its execution: the worker that reaches it calls
:func:`gate_open`, which opens the gate's approval, moves the execution running ->
``pending_approval`` through ``transition()``, closes the queue item (the worker slot is
free) and releases the asset locks unless the gate holds them. The votes go through the one
vote service (approvals/services/vote.py), which calls :func:`gate_passed` or
:func:`gate_failed` on the deciding vote; the expiry sweeper calls :func:`gate_failed` too.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from approvals.errors import VoteForbidden
from approvals.models import GateApproval
from execution import policy
from execution.enums import ActorType, ExecutionStatus, QueueStatus
from execution.models import Execution, QueueItem, StoredPolicy
from execution.services.events import event_record
from execution.services.transition import transition

S = ExecutionStatus

# hold_locks: the execution's locks outlive its attempt until the gate is decided or expires
# (nobody heartbeats them meanwhile); the resumed attempt takes them again as their holder.
_HOLD_SQL = """
UPDATE execution_locks SET expires_at = greatest(expires_at, %(until)s), updated_at = now()
WHERE is_active AND %(execution)s::uuid = ANY(holders)
"""


def gate_params(planned: dict[str, Any]) -> dict[str, Any]:
    """The gate's params with their defaults (validated at submission)."""
    params = planned.get("params") or {}
    return {
        "level": int(params.get("level", 1)),
        "approvers": str(params.get("approvers", "approver")),
        "timeout_seconds": params.get("timeout_seconds"),
        "message": str(params.get("message", "")),
        "hold_locks": bool(params.get("hold_locks", False)),
    }


def gate_open(
    *,
    execution: Execution,
    step_index: int,
    item_id: int | None,
    lease_token: uuid.UUID | None,
    assets: list[str],
) -> str:
    """Park ``execution`` (running, its gate step marked running) at gate ``step_index``.

    One transaction: the lease checked (a reaper that took the item first wins: False, nothing
    written), the gate's approval, the gate step ``pending_approval``, the queue item closed,
    running -> pending_approval with a ``gate_waiting`` event, an ``approval_requested`` event
    (which notifies the approvers), and the locks released or kept (``hold_locks``).
    Returns ``parked``, ``cancel`` (a cancel came first: the attempt ends cancelled) or
    ``lease_lost`` (nothing written).
    """
    from execution.worker.locks import locks_give

    with transaction.atomic():
        if item_id is not None:
            # The lease row, as the worker's statements read it: only the lease holder parks.
            leased = (
                QueueItem.objects.select_for_update()
                .filter(pk=item_id, lease_token=lease_token, status=QueueStatus.PROCESSING)
                .exists()
            )
            if not leased:
                return "lease_lost"
        row = Execution.objects.select_for_update().get(pk=execution.pk)
        if row.status != S.RUNNING:
            return "lease_lost"
        if row.cancel_requested_at is not None:
            return "cancel"
        params = gate_params((row.plan_snapshot or {}).get("steps", [])[step_index])
        now = timezone.now()
        timeout = (
            params["timeout_seconds"] or StoredPolicy.from_json(row.timeout_policy).approval_timeout_seconds
        )
        gate = GateApproval.objects.create(
            execution=row,
            step_index=step_index,
            approval_level=params["level"],
            approvers=params["approvers"],
            message=params["message"],
            hold_locks=params["hold_locks"],
            plan_hash=row.plan_hash,
            requested_at=now,
            expires_at=now + timedelta(seconds=timeout),
        )
        # The gate and the steps after it wait with the execution, as before a pre-run approval
        # (docs/contract.md#truth: one view of steps); the decision moves them on (transition()).
        row.steps.filter(step_index__gte=step_index, status__in=[S.QUEUED, S.RUNNING]).update(
            status=S.PENDING_APPROVAL, updated_at=now
        )
        if item_id is not None:
            QueueItem.objects.filter(pk=item_id).update(
                status=QueueStatus.COMPLETED,
                lease_token=None,
                lease_expires_at=None,
                attempt_started_at=None,
                completed_at=now,
                last_error=f"waiting at approval gate (step {step_index})",
                updated_at=now,
            )
        transition(
            row,
            S.PENDING_APPROVAL,
            actor_type=ActorType.WORKER,
            reason=f"approval gate at step {step_index}",
            expected_from=S.RUNNING,
            details={"step_index": step_index, "approval_id": str(gate.approval_id)},
        )
        event_record(
            execution=row,
            event_type="approval_requested",
            details={
                "approval_id": str(gate.approval_id),
                "approval_level": gate.approval_level,
                "expires_at": gate.expires_at.isoformat(),
                "step_index": step_index,
                "approvers": gate.approvers,
                "message": gate.message,
            },
        )
        if gate.hold_locks:
            with connection.cursor() as cur:
                cur.execute(_HOLD_SQL, {"until": gate.expires_at, "execution": str(row.execution_id)})
        elif assets:
            locks_give(execution=row, assets=assets, reason=f"waiting at approval gate (step {step_index})")
    return "parked"


def gate_vote_forbidden(*, gate: GateApproval, voter: Any) -> VoteForbidden | None:
    """A gate whose ``approvers`` is ``admin`` takes votes of the tenant's admins only: the
    policy's admin-only right in the tenant decides who that is."""
    if gate.approvers != "admin":
        return None
    decision = policy.decide(voter, policy.Right.MANAGE_MEMBERS, execution=gate.execution)
    if decision.allowed:
        return None
    return VoteForbidden(
        "missing_role", f"this gate takes the votes of the tenant's admins only ({voter} is not one)"
    )


def gate_passed(*, gate: GateApproval, execution: Execution, voter: Any) -> None:
    """The deciding approve vote (inside its transaction, before approved): the gate step is
    completed, so the resumed attempt starts at the step after it."""
    now = timezone.now()
    approvers = sorted(
        v.voter.get_username() for v in gate.votes.select_related("voter") if v.decision == "approve"
    )
    execution.steps.filter(step_index=gate.step_index).update(
        status=S.COMPLETED,
        completed_at=now,
        started_at=gate.requested_at,
        output_data={"approval_id": str(gate.approval_id), "approved_by": approvers},
        updated_at=now,
    )
    event_record(
        execution=execution,
        event_type="step_completed",
        actor=voter,
        actor_type=ActorType.USER,
        step_index=gate.step_index,
        details={"name": "approval gate", "status": S.COMPLETED, "approved_by": approvers},
    )


def gate_failed(*, gate: GateApproval, execution: Execution, reason: str) -> None:
    """A rejection or expiry (inside its transaction, before the execution ends rejected): the
    gate step says so, and locks the gate kept are released (the later steps end cancelled
    with the execution: ``transition()``)."""
    from execution.worker.locks import locks_release_all

    now = timezone.now()
    execution.steps.filter(step_index=gate.step_index).update(
        status=S.REJECTED, completed_at=now, error_message=reason[:4000], updated_at=now
    )
    if gate.hold_locks:
        locks_release_all(execution=execution, reason=f"approval gate {gate.state}")
