"""One attempt of an execution, from claim to its outcome (§4, §6, §13).

Paths out of an attempt: completed / partial; cancelled; timeout (dead-lettered with its
status, an operator may requeue it); failed → retried with back-off while attempts remain,
else dead-lettered ``failed``; busy asset → handed back (``lock_wait``) without holding a
worker; lease lost → stop quietly (the reaper or another worker owns the item now).
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from execution.engine.steps import AttemptState, step_run
from execution.engine.watch import Watch
from execution.enums import ActorType, ExecutionStatus, QueueStatus
from execution.models import Execution, ExecutionEvent
from execution.services.dlq import dlq_record
from execution.services.events import event_record
from execution.services.locks import LockBusy, locks_acquire, locks_release
from execution.services.progress import step_output_forget
from execution.services.queue import (
    Claim,
    backoff_seconds,
    policy_for,
    queue_complete,
    queue_release,
    queue_requeue_running,
)
from execution.services.transition import execution_fail_unstarted, transition

logger = logging.getLogger(__name__)
W = ActorType.WORKER


def _lock_wait_started(execution: Execution) -> float | None:
    """Seconds since the first lock_wait of this queue stay, or None when it never waited."""
    first = (
        ExecutionEvent.objects.filter(
            execution=execution, event_type="lock_wait", created_at__gte=execution.status_changed_at
        )
        .order_by("id")
        .values_list("created_at", flat=True)
        .first()
    )
    return (timezone.now() - first).total_seconds() if first else None


def _lock_wait(execution: Execution, claim: Claim, busy: LockBusy) -> str:
    waited = _lock_wait_started(execution)
    limit = float(getattr(settings, "LOCK_WAIT_LIMIT_SECONDS", 120))
    holder = busy.holder_execution_id or "unknown"
    if waited is not None and waited >= limit:
        reason = (
            f"asset {busy.asset_id} still locked after {waited:.0f}s "
            f"by execution {holder} ({busy.holder_owner_tag})"
        )
        with transaction.atomic():
            execution_fail_unstarted(execution=execution, reason=reason)
            dlq_record(
                execution=execution,
                reason="lock_wait_exceeded",
                last_error=reason,
                details={"asset_id": busy.asset_id, "holder": holder},
            )
            queue_complete(claim=claim, status=QueueStatus.FAILED, error=reason)
        return ExecutionStatus.FAILED
    delay = float(getattr(settings, "LOCK_RETRY_SECONDS", 1.0)) * random.uniform(0.5, 1.5)
    with transaction.atomic():
        event_record(
            execution=execution,
            event_type="lock_wait",
            actor_type=W,
            details={
                "asset_id": busy.asset_id,
                "holder_execution_id": holder,
                "retry_in_seconds": round(delay, 2),
            },
        )
        queue_release(
            claim=claim, delay_seconds=delay, error=f"waiting for asset {busy.asset_id}", count_attempt=False
        )
    return "lock_wait"


def _start(execution: Execution) -> str | None:
    """Checks before the first step; returns an outcome when the attempt ends here.

    An execution that fails here never started: queued -> failed, no ``started`` event,
    no ``started_at`` (run-time figures count only executions that ran).
    """
    from approvals.services.hashing import plan_matches_approval
    from execution import policy

    if execution.cancel_requested_at is not None:
        transition(execution, ExecutionStatus.CANCELLED, actor_type=W, reason="cancel requested before start")
        return ExecutionStatus.CANCELLED
    mismatch = plan_matches_approval(execution=execution)
    if mismatch:
        return _refuse_start(execution, "plan_tampered", mismatch, f"plan tampered: {mismatch}")
    # The actor must still hold the rights submission checked (§8), targets resolved as then.
    decision = policy.decide(
        execution.actor, policy.Right.SUBMIT, execution=execution, assets=policy.targets_of(execution)
    )
    if not decision.allowed:
        denied = decision.reason
        return _refuse_start(execution, "rbac_violation", denied, f"permission denied: {denied}")
    return None


def _refuse_start(execution: Execution, event_type: str, reason: str, error: str) -> str:
    """An event saying why, then queued -> failed: nothing of the plan runs."""
    with transaction.atomic():
        event_record(execution=execution, event_type=event_type, actor_type=W, details={"reason": reason})
        execution_fail_unstarted(execution=execution, reason=error)
    return ExecutionStatus.FAILED


def run_attempt(*, execution_pk: int, claim: Claim, worker_id: str) -> str:
    """Run one attempt; returns its outcome (a status, 'lock_wait', 'retry', 'lease_lost', 'skipped')."""
    execution = Execution.objects.select_related("tenant").get(pk=execution_pk)
    if execution.status != ExecutionStatus.QUEUED:
        # cancelled or finished meanwhile: the item has nothing left to do
        queue_complete(claim=claim, error=f"execution is {execution.status}")
        return "skipped"
    ended = _start(execution)
    if ended:
        queue_complete(
            claim=claim,
            status=QueueStatus.COMPLETED if ended == ExecutionStatus.CANCELLED else QueueStatus.FAILED,
        )
        return ended
    busy = _acquire_locks(execution, claim, worker_id)
    if isinstance(busy, str):
        return busy
    policy = policy_for(execution)
    execution = transition(
        execution,
        ExecutionStatus.RUNNING,
        actor_type=W,
        details={"worker": worker_id, "attempt": claim.attempt},
        fields={"timeout_at": timezone.now() + timedelta(seconds=policy.execution_timeout_seconds)},
    )
    execution.tenant  # noqa: B018 - keep the related tenant loaded for the steps
    watch = Watch(execution=execution, claim=claim)
    state = AttemptState(
        execution=execution,
        policy=policy,
        watch=watch,
        dry_run=execution.dry_run or bool(getattr(settings, "EXECUTION_DARK_LAUNCH", False)),
    )
    watch.start()
    try:
        outcome, error = _run_steps(state)
    finally:
        watch.stop()
        step_output_forget(execution=execution)
        locks_release(execution=execution, reason="attempt ended")
    return _finish(execution, claim, outcome, error)


def _acquire_locks(execution: Execution, claim: Claim, worker_id: str) -> str | None:
    busy = locks_acquire(execution=execution, worker_id=worker_id)
    if busy is None:
        return None
    return _lock_wait(execution, claim, busy)


def _run_steps(state: AttemptState) -> tuple[str, str]:
    """Run the steps not yet completed, in order; returns (outcome, error message)."""
    steps = list(state.execution.steps.order_by("step_index"))
    state.previous_outputs = {
        s.step_index: s.output_data or {} for s in steps if s.status == ExecutionStatus.COMPLETED
    }
    had_failure = False
    completed_any = any(s.status == ExecutionStatus.COMPLETED for s in steps)
    plan_steps = (state.execution.plan_snapshot or {}).get("steps") or []
    for step in steps:
        if step.status == ExecutionStatus.COMPLETED:
            continue  # resumed attempt: completed steps never run twice
        state.watch.check_now()
        if state.watch.interrupt.is_set():
            break
        result = step_run(state=state, step=step)
        if result.status == ExecutionStatus.COMPLETED:
            completed_any = True
            state.previous_outputs[step.step_index] = result.output
            continue
        if state.watch.reason == "lease_lost":
            return "lease_lost", ""
        if result.status in (ExecutionStatus.CANCELLED, ExecutionStatus.TIMEOUT):
            return result.status, result.error_message
        planned = plan_steps[step.step_index] if step.step_index < len(plan_steps) else {}
        if isinstance(planned, dict) and planned.get("continue_on_error"):
            had_failure = True
            continue
        return (
            ExecutionStatus.FAILED,
            f"step {step.step_index} ({step.step_name}) failed: {result.error_message}",
        )
    if state.watch.reason in ("cancelled", "timeout"):
        return state.watch.reason, "cancelled" if state.watch.reason == "cancelled" else "execution timeout"
    if state.watch.reason == "lease_lost":
        return "lease_lost", ""
    if had_failure:
        return (ExecutionStatus.PARTIAL if completed_any else ExecutionStatus.FAILED), "some steps failed"
    return ExecutionStatus.COMPLETED, ""


def _finish(execution: Execution, claim: Claim, outcome: str, error: str) -> str:
    if outcome == "lease_lost":
        return outcome  # someone else owns the item now; touch nothing
    with transaction.atomic():
        if outcome in (ExecutionStatus.COMPLETED, ExecutionStatus.PARTIAL):
            transition(execution, outcome, actor_type=W, fields={"result": _result(execution)})
            queue_complete(claim=claim)
            return outcome
        if outcome == ExecutionStatus.FAILED and claim.attempt < claim.max_attempts:
            delay = backoff_seconds(claim.attempt)
            queue_requeue_running(execution=execution, reason=error, delay_seconds=delay, actor_type=W)
            queue_release(claim=claim, delay_seconds=delay, error=error)
            return "retry"
        # The steps that will not run now end cancelled (§13).
        execution.steps.filter(status__in=[ExecutionStatus.QUEUED, ExecutionStatus.RUNNING]).update(
            status=ExecutionStatus.CANCELLED
        )
        if outcome == ExecutionStatus.CANCELLED:
            transition(
                execution, outcome, actor_type=W, reason="cancelled", fields={"result": _result(execution)}
            )
            queue_complete(claim=claim, error="cancelled")
            return outcome
        transition(
            execution,
            outcome,
            actor_type=W,
            reason=error,
            fields={"error_message": error[:4000], "result": _result(execution)},
        )
        dlq_record(
            execution=execution,
            reason="timeout" if outcome == ExecutionStatus.TIMEOUT else "max_attempts_exceeded",
            last_error=error,
        )
        queue_complete(claim=claim, status=QueueStatus.FAILED, error=error)
        return outcome


def _result(execution: Execution) -> dict[str, object]:
    steps = list(
        execution.steps.order_by("step_index").values("step_index", "status", "exit_code", "duration_ms")
    )
    return {"steps": steps}
