"""``transition()``: the single owner of every execution status change (docs/contract.md#state-machine)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from execution.enums import FINISHED_STATUSES, ActorType, ExecutionStatus, TargetStatus
from execution.errors import IllegalTransition
from execution.masking import mask_text, secrets_forget, secrets_of
from execution.models import Execution, ExecutionStep, StepTarget
from execution.services.events import event_record
from execution.state_machine import EVENT_FOR_STATUS, is_legal, status_columns


def transition(
    execution: Execution | Any,
    to: str,
    *,
    actor: Any = None,
    actor_type: str = ActorType.SYSTEM,
    reason: str = "",
    details: dict[str, Any] | None = None,
    event_type: str | None = None,
    expected_from: str | frozenset[str] | None = None,
    fields: dict[str, Any] | None = None,
) -> Execution:
    """Move an execution to status ``to``.

    Locks the row (SELECT ... FOR UPDATE), checks the transition against docs/contract.md#state-machine's
    table, writes
    ``previous_status``/``status_changed_at`` and one ``execution_events`` row in the same
    transaction; the event is published after commit. An illegal transition raises
    :class:`IllegalTransition` and changes nothing. ``expected_from`` narrows the legal
    sources further (e.g. a worker that only wants to go running -> completed).
    ``fields`` are other columns to update in the same write (result, error_message, ...).
    """
    pk = execution if isinstance(execution, int) else execution.pk
    fields = dict(fields or {})
    with transaction.atomic():
        # The row lock serialises concurrent transitions: the loser re-reads the winner's status.
        locked = Execution.objects.select_for_update().get(pk=pk)
        current = locked.status
        if expected_from is not None:
            allowed = {expected_from} if isinstance(expected_from, str) else set(expected_from)
            if current not in allowed:
                raise IllegalTransition(locked.execution_id, current, to)
        if not is_legal(current, to):
            raise IllegalTransition(locked.execution_id, current, to)
        # docs/contract.md#secrets-and-masking: a reason or error message may carry text from a runner or an
        # exception.
        values = secrets_of(locked.execution_id)
        reason = mask_text(reason, values)
        if fields.get("error_message"):
            fields["error_message"] = mask_text(fields["error_message"], values)
        now = timezone.now()
        # The columns every status change writes, from the one definition the worker's
        # statements use too (execution/state_machine.py).
        columns = status_columns(current, to, started_at=locked.started_at, now=now)
        update_fields = list(columns)
        for name, value in columns.items():
            setattr(locked, name, value)
        for name, value in fields.items():
            setattr(locked, name, value)
            if name not in update_fields:
                update_fields.append(name)
        locked.save(update_fields=update_fields)
        event_details = dict(details or {})
        if reason:
            event_details.setdefault("reason", reason)
        event_record(
            execution=locked,
            event_type=event_type or EVENT_FOR_STATUS.get(to, to),
            actor=actor,
            actor_type=actor_type,
            from_status=current,
            to_status=to,
            details=event_details,
            error_message=fields.get("error_message", "") or "",
        )
        if current == ExecutionStatus.PENDING_APPROVAL:
            # The steps waited with the execution: approved, they wait in the queue; rejected
            # or cancelled, they will never run (docs/contract.md#truth, one view of steps).
            waiting = ExecutionStatus.QUEUED if to not in FINISHED_STATUSES else ExecutionStatus.CANCELLED
            waiting_steps = locked.steps.filter(status=ExecutionStatus.PENDING_APPROVAL)
            if waiting == ExecutionStatus.CANCELLED:
                steps_never_run(waiting_steps)
            else:
                waiting_steps.update(status=waiting, updated_at=now)
        if current == ExecutionStatus.RUNNING and to == ExecutionStatus.QUEUED:
            # Handed back for another attempt (a dead worker's lease, a shutdown): the fleet
            # targets the attempt left running or waiting for a lock run again in the next
            # one (a completed target never does): pending, not "running" with nobody running
            # them (docs/fleet.md).
            StepTarget.objects.filter(
                execution_id=locked.execution_id, status__in=(TargetStatus.RUNNING, TargetStatus.WAITING)
            ).update(status=TargetStatus.PENDING)
        if current == ExecutionStatus.RUNNING and to != ExecutionStatus.RUNNING:
            # The attempt is over: its resolved values leave this process's memory once the
            # writes that might still carry them (dead letter, queue error) are committed.
            execution_id = locked.execution_id
            transaction.on_commit(lambda: secrets_forget(execution_id=execution_id))
    return locked


def execution_fail_unstarted(
    *, execution: Execution | Any, reason: str, actor_type: str = ActorType.WORKER
) -> Execution:
    """queued -> failed for an execution that could not start (docs/contract.md#state-machine): a revoked
    right, a plan
    that no longer matches its approval, the lock wait limit, attempts used up by dead
    workers. It never ran: no ``started`` event, ``started_at`` stays empty."""
    with transaction.atomic():
        failed = transition(
            execution,
            ExecutionStatus.FAILED,
            actor_type=actor_type,
            reason=reason,
            expected_from=ExecutionStatus.QUEUED,
            fields={"error_message": reason[:4000]},
        )
        # Its steps will not run either (docs/contract.md#cancellation: steps not run end cancelled).
        steps_never_run(failed.steps.filter(status=ExecutionStatus.QUEUED))
    return failed


def steps_never_run(steps: QuerySet[ExecutionStep]) -> None:
    """``steps`` will never run (a rejected, expired or cancelled approval or gate, a cancel
    or failure before the start): they end ``cancelled``, and the targets of a fleet step
    among them that never started (or waited for a lock) end ``skipped`` (docs/fleet.md), not
    pending forever; a target left ``running`` by a worker that died (the execution waits in
    the queue, nobody runs it) ends ``cancelled``."""
    targets = StepTarget.objects.filter(step__in=steps)
    unstarted = (TargetStatus.PENDING, TargetStatus.WAITING)
    targets.filter(status__in=unstarted).update(status=TargetStatus.SKIPPED)
    targets.filter(status=TargetStatus.RUNNING).update(
        status=TargetStatus.CANCELLED, completed_at=timezone.now(), error="its worker stopped"
    )
    steps.update(status=ExecutionStatus.CANCELLED, updated_at=timezone.now())
