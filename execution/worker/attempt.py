"""One attempt of an execution, from its claim (or an immediate start) to its outcome
(docs/contract.md#state-machine, docs/contract.md#queue-and-workers, docs/contract.md#cancellation).

The hot path is three statements for a one-step plan (execution/worker/store.py): the claim
returns the attempt's whole context, ``start`` moves it to running with its first step,
``finish`` records the last step and the outcome; between steps one ``step_boundary`` records
a step and starts the next. Locks cost round trips only for plans that target assets.

Paths out of an attempt: completed / partial; cancelled; timeout (dead-lettered with its
status, an operator may requeue it); failed → retried with back-off while attempts remain,
else dead-lettered ``failed``; busy asset → handed back (``lock_wait``) without holding a
worker; lease lost → stop quietly (the reaper or another worker owns the item now).
"""

from __future__ import annotations

import logging
import random
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from approvals.services.hashing import plan_mismatch
from execution import policy
from execution.enums import ActorType, ExecutionStatus, QueueStatus
from execution.masking import mask_text, secrets_forget
from execution.models import Execution, ExecutionEvent, Tenant
from execution.policy.rules import SUBMIT_ROLES, role_allows
from execution.runners.registry import get_runner
from execution.services.dlq import dlq_record
from execution.services.events import event_record
from execution.services.locks import LockBusy, locks_acquire, locks_release
from execution.services.progress import step_output_forget
from execution.services.queue import backoff_seconds
from execution.services.transition import execution_fail_unstarted, transition
from execution.worker import store
from execution.worker.steps import (
    AttemptState,
    plan_step,
    retry_count_for,
    step_event,
    step_invoke,
    step_record,
    step_started_event,
)
from execution.worker.watch import Watched, watcher

logger = logging.getLogger(__name__)
W = ActorType.WORKER
S = ExecutionStatus


def _stand_in(ctx: store.AttemptContext) -> Execution:
    """An unsaved Execution carrying the ids the ORM-side writers need (events, locks)."""
    execution = Execution(
        pk=ctx.pk,
        execution_id=ctx.execution_id,
        tenant_id=ctx.tenant_id,
        actor_id=ctx.actor_id,
        status=ctx.status,
        trace_id=ctx.trace_id,
        sla_class=ctx.sla_class,
        action_class=ctx.action_class,
        environment=ctx.environment,
        plan_snapshot=ctx.plan_snapshot,
    )
    execution.tenant = Tenant(pk=ctx.tenant_id, slug=ctx.tenant_slug)
    return execution


def _rbac_denied(ctx: store.AttemptContext) -> str | None:
    """The re-check before start (docs/contract.md#rbac), decided from the claim's context without a query
    when the role alone allows every step; grants and non-strict mode take the full check."""
    if not ctx.actor_active:
        return f"actor {ctx.actor_username!r} is deactivated"
    if ctx.role in SUBMIT_ROLES and all(
        role_allows(role=ctx.role, environment=ctx.environment, action_class=s.action_class)
        for s in ctx.steps
    ):
        return None
    execution = Execution.objects.select_related("tenant", "actor").get(pk=ctx.pk)
    decision = policy.decide(
        execution.actor, policy.Right.SUBMIT, execution=execution, assets=policy.targets_of(execution)
    )
    return None if decision.allowed else decision.reason


def _fail_before_start(execution: Execution, ctx: store.AttemptContext, reason: str, **event: Any) -> str:
    """queued -> failed for an attempt that may not start: it never ran (no ``started``)."""
    with transaction.atomic():
        if event:
            event_record(execution=execution, actor_type=W, **event)
        execution_fail_unstarted(execution=ctx.pk, reason=reason)
        store.hand_back(ctx=ctx, status=QueueStatus.FAILED, error=reason, give_back=False)
    return S.FAILED


def attempt_run(*, ctx: store.AttemptContext, worker_id: str) -> str:
    """Run one attempt; returns its outcome (a status, 'lock_wait', 'retry', 'lease_lost', 'skipped')."""
    expected = S.QUEUED
    if ctx.status != expected:  # cancelled or finished meanwhile: nothing left to do
        store.hand_back(
            ctx=ctx, status=QueueStatus.COMPLETED, error=f"execution is {ctx.status}", give_back=False
        )
        return "skipped"
    execution = _stand_in(ctx)
    if ctx.cancel_requested:
        transition(ctx.pk, S.CANCELLED, actor_type=W, reason="cancel requested before start")
        store.hand_back(ctx=ctx, status=QueueStatus.COMPLETED, error="cancelled", give_back=False)
        return S.CANCELLED
    mismatch = plan_mismatch(
        snapshot=ctx.plan_snapshot,
        submitted_hash=ctx.plan_hash,
        approval_level=ctx.approval_level,
        approved_hashes=[ctx.approval_plan_hash] if ctx.approval_plan_hash else [],
    )
    if mismatch:
        return _fail_before_start(
            execution,
            ctx,
            f"plan tampered: {mismatch}",
            event_type="plan_tampered",
            details={"reason": mismatch},
        )
    denied = _rbac_denied(ctx)
    if denied:
        return _fail_before_start(
            execution,
            ctx,
            f"permission denied: {denied}",
            event_type="rbac_violation",
            details={"reason": denied},
        )
    assets = sorted({s.target_asset_id for s in ctx.steps if s.target_asset_id}, key=lambda a: (len(a), a))
    if assets:
        ended = _acquire_locks(execution, ctx, worker_id, assets)
        if ended:
            return ended
    pending = [s for s in ctx.steps if s.status != S.COMPLETED]
    if pending and not assets and all(get_runner(s.step_type).inline for s in pending):
        inline = _run_inline(execution, ctx, pending, worker_id)
        if inline is not None:
            return inline
    first = pending[0] if pending else None
    retry = retry_count_for(first) if first else 0
    events = [
        {
            "type": "started",
            "from": expected,
            "to": S.RUNNING,
            "details": {"worker": worker_id, "attempt": ctx.attempt},
        }
    ]
    if first:
        events.append(step_started_event(first, retry))
    timeout_at = store.start(
        ctx=ctx,
        expected=expected,
        first_step=first.step_index if first else None,
        retry_count=retry,
        events=events,
    )
    if timeout_at is None:  # a cancel (or the reaper) came first
        return _not_started(execution, ctx, assets)
    execution.status = S.RUNNING
    state = AttemptState(
        ctx=ctx,
        execution=execution,
        watched=watcher.watch(Watched(ctx=ctx, timeout_at=timeout_at, has_locks=bool(assets))),
        dry_run=ctx.dry_run or settings.EXECUTION_DARK_LAUNCH,
        previous_outputs={s.step_index: s.output_data or {} for s in ctx.steps if s.status == S.COMPLETED},
        previous_statuses={s.step_index: s.status for s in ctx.steps if s.status == S.COMPLETED},
        assets=assets,
    )
    try:
        return _run(state, pending, retry)
    finally:
        watcher.release()
        step_output_forget(execution=execution)
        # The attempt is over: its resolved values leave this process's memory
        # (docs/contract.md#secrets-and-masking).
        secrets_forget(execution_id=ctx.execution_id)
        if assets and not state.locks_released:  # lease lost, or a crash
            locks_release(execution=execution, reason="attempt ended")


def _not_started(execution: Execution, ctx: store.AttemptContext, assets: list[str]) -> str:
    """The start lost its compare-and-swap: a cancel or the reaper came first."""
    if assets:
        locks_release(execution=execution, reason="attempt did not start")
    row = Execution.objects.filter(pk=ctx.pk).values_list("status", "cancel_requested_at").first()
    if row and row[0] == ctx.status and row[1] is not None:
        transition(ctx.pk, S.CANCELLED, actor_type=W, reason="cancel requested before start")
    store.hand_back(ctx=ctx, status=QueueStatus.COMPLETED, error="did not start", give_back=False)
    return "skipped"


def _run_inline(
    execution: Execution, ctx: store.AttemptContext, pending: list[store.StepRow], worker_id: str
) -> str | None:
    """Steps that touch nothing outside this process (``Runner.inline``: noop) run before the
    execution is marked running; one statement then records the start, the steps and the
    outcome with the same rows and events as the step-by-step path (docs/engine.md). None
    when a step did not complete: the step-by-step path runs them again (they have no effect)."""
    state = AttemptState(
        ctx=ctx,
        execution=execution,
        watched=Watched(ctx=ctx, timeout_at=None, has_locks=False),
        dry_run=ctx.dry_run or settings.EXECUTION_DARK_LAUNCH,
        previous_outputs={s.step_index: s.output_data or {} for s in ctx.steps if s.status == S.COMPLETED},
        previous_statuses={s.step_index: s.status for s in ctx.steps if s.status == S.COMPLETED},
    )
    events: list[dict[str, Any]] = [
        {
            "type": "started",
            "from": ctx.status,
            "to": S.RUNNING,
            "details": {"worker": worker_id, "attempt": ctx.attempt},
        }
    ]
    done: list[dict[str, Any]] = []
    outcomes = {s.step_index: _outcome_of(s) for s in ctx.steps}
    for step in pending:
        retry = retry_count_for(step)
        outcome = step_invoke(state=state, step=step)
        if outcome.result.status != S.COMPLETED:
            return None
        record = step_record(state, step, outcome)
        events += [step_started_event(step, retry), step_event(state, step, outcome, record)]
        done.append({**record, "retry_count": retry})
        state.previous_outputs[step.step_index] = record["output"]
        state.previous_statuses[step.step_index] = S.COMPLETED
        outcomes[step.step_index] = {
            "step_index": step.step_index,
            "status": S.COMPLETED,
            "exit_code": record["exit_code"],
            "duration_ms": outcome.duration_ms,
        }
    events.append({"type": S.COMPLETED, "from": S.RUNNING, "to": S.COMPLETED, "details": {}})
    result = {"steps": [outcomes[i] for i in sorted(outcomes)]}
    if store.run_inline(ctx=ctx, expected=ctx.status, done=done, result=result, events=events):
        return S.COMPLETED
    return _not_started(execution, ctx, [])


def _outcome_of(step: store.StepRow) -> dict[str, Any]:
    return {
        "step_index": step.step_index,
        "status": step.status,
        "exit_code": step.exit_code,
        "duration_ms": step.duration_ms,
    }


def _acquire_locks(
    execution: Execution, ctx: store.AttemptContext, worker_id: str, assets: list[str]
) -> str | None:
    busy = locks_acquire(execution=execution, worker_id=worker_id, assets=assets)
    if busy is None:
        return None
    return _lock_wait(execution, ctx, busy)


def _lock_wait_started(execution: Execution) -> float | None:
    """Seconds since the first lock_wait of this queue stay, or None when it never waited."""
    changed = Execution.objects.values_list("status_changed_at", flat=True).get(pk=execution.pk)
    first = (
        ExecutionEvent.objects.filter(
            execution_id=str(execution.execution_id), event_type="lock_wait", created_at__gte=changed
        )
        .order_by("id")
        .values_list("created_at", flat=True)
        .first()
    )
    return (timezone.now() - first).total_seconds() if first else None


def _lock_wait(execution: Execution, ctx: store.AttemptContext, busy: LockBusy) -> str:
    waited = _lock_wait_started(execution)
    holder = busy.holder_execution_id or "unknown"
    if waited is not None and waited >= settings.LOCK_WAIT_LIMIT_SECONDS:
        reason = (
            f"asset {busy.asset_id} still locked after {waited:.0f}s "
            f"by execution {holder} ({busy.holder_owner_tag})"
        )
        with transaction.atomic():
            executed = execution_fail_unstarted(execution=ctx.pk, reason=reason)
            dlq_record(
                execution=executed,
                reason="lock_wait_exceeded",
                last_error=reason,
                details={"asset_id": busy.asset_id, "holder": holder},
            )
            store.hand_back(ctx=ctx, status=QueueStatus.FAILED, error=reason, give_back=False)
        return S.FAILED
    delay = settings.LOCK_RETRY_SECONDS * random.uniform(0.5, 1.5)
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
        store.hand_back(
            ctx=ctx,
            status=QueueStatus.PENDING,
            error=f"waiting for asset {busy.asset_id}",
            delay_seconds=delay,
            give_back=True,
        )
    return "lock_wait"


def _run(state: AttemptState, pending: list[store.StepRow], retry: int) -> str:
    """Run the steps not yet completed, in order (each already marked running by the statement
    before it), then finish."""
    ctx, watched = state.ctx, state.watched
    outcomes: dict[int, dict[str, Any]] = {s.step_index: _outcome_of(s) for s in ctx.steps}
    completed_any = any(s.status == S.COMPLETED for s in ctx.steps)
    had_failure = False
    for position, step in enumerate(pending):
        watched.check_timeout()
        if watched.interrupt.is_set():
            return _finish(state, outcomes, watched.reason or S.CANCELLED, "", None)
        outcome = step_invoke(state=state, step=step)
        record = step_record(state, step, outcome)
        result = outcome.result
        outcomes[step.step_index] = {
            "step_index": step.step_index,
            "status": result.status,
            "exit_code": record["exit_code"],
            "duration_ms": outcome.duration_ms,
        }
        event = step_event(state, step, outcome, record)
        if watched.reason == "lease_lost":
            return "lease_lost"
        if watched.reason == "shutdown" and result.status != S.COMPLETED:
            return _finish(state, outcomes, "shutdown", "", None)  # the step runs again
        if result.status == S.COMPLETED:
            completed_any = True
            state.previous_outputs[step.step_index] = record["output"]
            state.previous_statuses[step.step_index] = result.status
        elif result.status in (S.CANCELLED, S.TIMEOUT):
            return _finish(state, outcomes, result.status, record["error"], (record, event))
        elif plan_step(ctx, step.step_index).get("continue_on_error"):
            had_failure = True
            state.previous_outputs[step.step_index] = record["output"]
            state.previous_statuses[step.step_index] = result.status
        else:
            error = f"step {step.step_index} ({step.step_name}) failed: {record['error']}"
            # The step's own max_retries (0 = one run) within the policy's attempts.
            may_retry = retry_count_for(step) < step.max_retries
            return _finish(state, outcomes, S.FAILED, error, (record, event), may_retry=may_retry)
        if position + 1 == len(pending):
            if had_failure:
                final = S.PARTIAL if completed_any else S.FAILED
                return _finish(state, outcomes, final, "some steps failed", (record, event))
            return _finish(state, outcomes, S.COMPLETED, "", (record, event))
        following = pending[position + 1]
        retry = retry_count_for(following)
        boundary = store.step_boundary(
            ctx=ctx,
            done=record,
            next_step=following.step_index,
            retry_count=retry,
            events=[event, step_started_event(following, retry, when="next")],
        )
        if boundary.lease_lost:
            return "lease_lost"
        if boundary.cancelled or boundary.late:
            reason = S.CANCELLED if boundary.cancelled else S.TIMEOUT
            return _finish(
                state, outcomes, reason, "cancelled" if boundary.cancelled else "execution timeout", None
            )
    return _finish(state, outcomes, S.COMPLETED, "", None)  # nothing was left to run


def _finish(
    state: AttemptState,
    outcomes: dict[int, dict[str, Any]],
    outcome: str,
    error: str,
    last: tuple[dict[str, Any], dict[str, Any]] | None,
    *,
    may_retry: bool = True,
) -> str:
    """Record the last step, release the locks and record the outcome: one statement."""
    ctx = state.ctx
    if outcome == "lease_lost":
        return outcome  # someone else owns the item now; touch nothing
    done, events = (last[0], [last[1]]) if last else (None, [])
    if state.assets:
        events.append(
            {
                "type": "lock_released",
                "details": {"assets": sorted(state.assets), "reason": "attempt ended"},
                "when": "locks",
            }
        )
    error = mask_text(error, state.secrets)
    result = {"steps": [outcomes[i] for i in sorted(outcomes)]}
    common: dict[str, Any] = {"ctx": ctx, "done": done, "result": result, "has_locks": bool(state.assets)}
    if outcome == "shutdown":
        # SIGTERM and the grace period is over: back to the queue at once, the attempt not
        # counted; the interrupted step runs again on the next attempt (docs/contract.md#queue-and-workers).
        events.append(
            {
                "type": "retry_scheduled",
                "from": S.RUNNING,
                "to": S.QUEUED,
                "details": {"delay_seconds": 0, "reason": "worker stopped (SIGTERM)"},
            }
        )
        ended = store.finish(
            **common,
            to=S.QUEUED,
            error=None,
            cancel_rest=False,
            queue_status=QueueStatus.PENDING,
            queue_error="worker stopped (SIGTERM)",
            give_back=True,
            events=events,
        )
    elif outcome in (S.COMPLETED, S.PARTIAL):
        events.append({"type": outcome, "from": S.RUNNING, "to": outcome, "details": {}})
        ended = store.finish(
            **common,
            to=outcome,
            error=None,
            cancel_rest=False,
            queue_status=QueueStatus.COMPLETED,
            events=events,
        )
    elif outcome == S.FAILED and may_retry and ctx.item_id is not None and ctx.attempt < ctx.max_attempts:
        delay = backoff_seconds(ctx.attempt)
        events.append(
            {
                "type": "retry_scheduled",
                "from": S.RUNNING,
                "to": S.QUEUED,
                "details": {"delay_seconds": round(delay, 3), "reason": error},
            }
        )
        ended = store.finish(
            **common,
            to=S.QUEUED,
            error=None,
            cancel_rest=False,
            queue_status=QueueStatus.PENDING,
            queue_error=error,
            delay_seconds=delay,
            events=events,
        )
        outcome = "retry"
    elif outcome == S.CANCELLED:
        events.append(
            {"type": "cancelled", "from": S.RUNNING, "to": S.CANCELLED, "details": {"reason": "cancelled"}}
        )
        ended = store.finish(
            **common,
            to=S.CANCELLED,
            error=None,
            cancel_rest=True,
            queue_status=QueueStatus.COMPLETED,
            queue_error="cancelled",
            events=events,
        )
    else:
        reason = "timeout" if outcome == S.TIMEOUT else "max_attempts_exceeded"
        events.append(
            {"type": outcome, "from": S.RUNNING, "to": outcome, "details": {"reason": error}, "error": error}
        )
        events.append(
            {
                "type": "dead_lettered",
                "details": {"reason": reason, "attempts": ctx.attempt},
                "error": error[:2000],
                "when": "dlq",
            }
        )
        ended = store.finish(
            **common,
            to=outcome,
            error=error[:4000],
            cancel_rest=True,
            queue_status=QueueStatus.FAILED,
            queue_error=error,
            dlq_reason=reason,
            events=events,
        )
    state.locks_released = ended
    return outcome if ended else "lease_lost"
