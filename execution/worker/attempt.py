"""One attempt of an execution, from its claim (or an immediate start) to its outcome
(docs/contract.md#state-machine, docs/contract.md#queue-and-workers, docs/contract.md#cancellation).

The claim (execution/worker/claim.py) returns the attempt's whole context; the checks before
the first step and the lock taking are in execution/worker/before_start.py. Then, for a plan
whose remaining steps all run inline (noop), one statement records start, steps and outcome
(2 round trips in all); otherwise ``start`` moves it to running with its first step, one
``step_boundary`` per step records a step and starts the next, and ``finish``
(execution/worker/outcome.py) records the last step and the outcome (n + 2). The statements
are in execution/worker/store.py. Locks cost round trips only for plans that target assets.

Paths out of an attempt: completed / partial; cancelled; timeout (dead-lettered with its
status, an operator may requeue it); a failed step → run again after a back-off while its
own ``max_retries`` allow (the queue's attempt given back), else the execution fails (no
dead letter: a failed step is a result, docs/contract.md#truth); busy asset → handed back
(``lock_wait``) without holding a worker; a target that could not be reached → a
platform fault: the queue's next attempt after a back-off, past ``max_attempts`` the DLQ
(``target_unreachable``); lease lost → stop quietly (the reaper or another
worker owns the item now).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone

from approvals.gates import gate_open
from approvals.services.hashing import plan_mismatch
from execution.enums import ActorType, ExecutionStatus, LockScope, QueueStatus
from execution.masking import secrets_forget
from execution.models import Execution, Tenant
from execution.runners.registry import get_runner
from execution.secrets.references import find_references
from execution.services.progress import step_output_forget
from execution.services.transition import transition
from execution.worker import claim, store
from execution.worker.before_start import (
    fail_before_start,
    lock_busy_outcome,
    locks_take_or_park,
    not_started,
    rbac_denied,
)
from execution.worker.locks import LockRequest, lock_requests, locks_give, locks_take, owner_tag
from execution.worker.outcome import attempt_finish
from execution.worker.steps import (
    AttemptState,
    lock_scope,
    plan_step,
    retry_count_for,
    step_event,
    step_invoke,
    step_record,
    step_started_event,
    step_targets_of,
)
from execution.worker.watch import Watched, watcher, worker_id

W = ActorType.WORKER
S = ExecutionStatus


def _attempt_state(
    ctx: claim.AttemptContext, execution: Execution, watched: Watched, held: list[LockRequest]
) -> AttemptState:
    """What the steps of this attempt share; the outputs of steps completed before it."""
    completed = [s for s in ctx.steps if s.status == S.COMPLETED]
    return AttemptState(
        ctx=ctx,
        execution=execution,
        watched=watched,
        dry_run=ctx.dry_run or settings.EXECUTION_DARK_LAUNCH,
        previous_outputs={s.step_index: s.output_data or {} for s in completed},
        previous_statuses={s.step_index: s.status for s in completed},
        held=held,
        assets=[r.asset_id for r in held],
    )


def _first_locks(ctx: claim.AttemptContext, pending: list[claim.StepRow]) -> list[LockRequest]:
    """What the attempt locks before it starts (docs/contract.md#asset-locks): ``execution``
    scope, every target of the plan; ``step`` scope, the targets of the first step to run."""
    if lock_scope(ctx) == LockScope.STEP:
        return lock_requests(t for s in pending[:1] for t in step_lock_targets(ctx, s))
    return lock_requests(t for s in ctx.steps for t in step_lock_targets(ctx, s))


def step_lock_targets(ctx: claim.AttemptContext, step: claim.StepRow) -> list[tuple[str, str]]:
    """(asset id, action class) of what is locked for ``step`` before it starts: its target;
    a fleet step's targets in ``execution`` scope (with the plan's, up front), none in
    ``step`` scope: there each target takes its own lock as it starts (docs/fleet.md "Locks",
    execution/worker/fanout.py)."""
    if isinstance(plan_step(ctx, step.step_index).get("targets"), list) and lock_scope(ctx) == LockScope.STEP:
        return []
    return [(str(t.get("asset_id") or ""), step.action_class) for t in step_targets_of(ctx, step)]


def _stand_in(ctx: claim.AttemptContext) -> Execution:
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


def attempt_run(*, ctx: claim.AttemptContext, worker_id: str) -> str:
    """Run one attempt; returns its outcome (a status, 'lock_wait', 'step_retry', 'lease_lost', 'skipped')."""
    expected = S.QUEUED
    if ctx.status != expected:  # cancelled or finished meanwhile: nothing left to do
        claim.hand_back(
            ctx=ctx, status=QueueStatus.COMPLETED, error=f"execution is {ctx.status}", give_back=False
        )
        return "skipped"
    execution = _stand_in(ctx)
    if ctx.cancel_requested:
        transition(ctx.pk, S.CANCELLED, actor_type=W, reason="cancel requested before start")
        claim.hand_back(ctx=ctx, status=QueueStatus.COMPLETED, error="cancelled", give_back=False)
        return S.CANCELLED
    mismatch = plan_mismatch(
        snapshot=ctx.plan_snapshot,
        submitted_hash=ctx.plan_hash,
        approval_level=ctx.approval_level,
        approved_hashes=[ctx.approval_plan_hash] if ctx.approval_plan_hash else [],
    )
    if mismatch:
        return fail_before_start(
            execution,
            ctx,
            f"plan tampered: {mismatch}",
            event_type="plan_tampered",
            details={"reason": mismatch},
        )
    if ctx.approval_run_before is not None and ctx.approval_run_before <= timezone.now():
        # Approved for a run window that is over (docs/approvals.md#run-windows): it never starts.
        window_end = ctx.approval_run_before.isoformat()
        return fail_before_start(
            execution,
            ctx,
            f"run window ended at {window_end} before it could start",
            event_type="run_window_ended",
            details={"run_before": window_end},
        )
    denied = rbac_denied(ctx)
    if denied:
        return fail_before_start(
            execution,
            ctx,
            f"permission denied: {denied}",
            event_type="rbac_violation",
            details={"reason": denied},
        )
    pending = [s for s in ctx.steps if s.status != S.COMPLETED]
    held = _first_locks(ctx, pending)
    targeted = any(s.target_asset_id for s in ctx.steps)
    inline_ok = not held or lock_scope(ctx) == LockScope.EXECUTION  # every lock of the plan up front
    if pending and inline_ok and all(_inline(ctx, s) for s in pending):
        inline = _run_inline(execution, ctx, pending, worker_id, held)
        if inline is not None:
            return inline
    if held:
        ended = locks_take_or_park(execution, ctx, worker_id, held)
        if ended:
            return ended
    assets = [r.asset_id for r in held]
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
        return not_started(execution, ctx, assets)
    execution.status = S.RUNNING
    state = _attempt_state(
        ctx,
        execution,
        watcher.watch(Watched(ctx=ctx, timeout_at=timeout_at, has_locks=targeted)),
        held,
    )
    try:
        return _run(state, pending, retry)
    finally:
        state.connections.close_all()  # SSH connections kept between its steps
        watcher.release()
        step_output_forget(execution=execution)
        # The attempt is over: its resolved values leave this process's memory
        # (docs/contract.md#secrets-and-masking).
        secrets_forget(execution_id=ctx.execution_id)
        if state.assets and not state.locks_released:  # lease lost, or a crash
            locks_give(execution=execution, assets=state.assets, reason="attempt ended")


def _inline(ctx: claim.AttemptContext, step: claim.StepRow) -> bool:
    """The step may run inline: its runner touches nothing outside this process
    (``Runner.inline``) and its params hold no secret reference (resolving one reads a
    backend, perhaps a remote one, and writes an audit row: an effect)."""
    return get_runner(step.step_type).inline and not find_references(
        plan_step(ctx, step.step_index).get("params")
    )


def _run_inline(
    execution: Execution,
    ctx: claim.AttemptContext,
    pending: list[claim.StepRow],
    worker_id: str,
    held: list[LockRequest],
) -> str | None:
    """Steps that touch nothing outside this process (``Runner.inline``: noop) run before the
    execution is marked running; one statement then records the start, the steps and the
    outcome with the same rows and events as the step-by-step path (docs/engine.md), and
    takes and gives the plan's asset locks (``held``) in the same statement, or parks the
    attempt when they are busy. None when a step did not complete: the step-by-step path
    runs them again (they have no effect)."""
    state = _attempt_state(ctx, execution, Watched(ctx=ctx, timeout_at=None, has_locks=False), [])
    events: list[dict[str, Any]] = [
        {
            "type": "started",
            "from": ctx.status,
            "to": S.RUNNING,
            "details": {"worker": worker_id, "attempt": ctx.attempt},
        }
    ]
    done: list[dict[str, Any]] = []
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
    if not held:
        events.append({"type": S.COMPLETED, "from": S.RUNNING, "to": S.COMPLETED, "details": {}})
        if store.run_inline(ctx=ctx, expected=ctx.status, done=done, events=events):
            return S.COMPLETED
        return not_started(execution, ctx, [])
    assets = [r.asset_id for r in held]
    acquired = {
        "type": "lock_acquired",
        "details": {
            "assets": assets,  # lock order, as a take lists them
            "modes": {r.asset_id: str(r.mode) for r in held},
            "owner_tag": owner_tag(ctx.execution_id, worker_id),
        },
    }
    released = {"type": "lock_released", "details": {"assets": sorted(assets), "reason": "attempt ended"}}
    events = [acquired, *events, released]
    events.append({"type": S.COMPLETED, "from": S.RUNNING, "to": S.COMPLETED, "details": {}})
    result = store.run_inline_locked(ctx=ctx, expected=ctx.status, requests=held, done=done, events=events)
    if result.recorded:
        return S.COMPLETED
    if result.busy is not None:
        return lock_busy_outcome(execution, ctx, result.busy)
    return not_started(execution, ctx, [])


def _run(state: AttemptState, pending: list[claim.StepRow], retry: int) -> str:
    """Run the steps not yet completed, in order (each already marked running by the statement
    before it), then finish."""
    ctx, watched = state.ctx, state.watched
    completed_any = any(s.status == S.COMPLETED for s in ctx.steps)
    had_failure = False
    for position, step in enumerate(pending):
        watched.check_timeout()
        if watched.interrupt.is_set():
            return attempt_finish(state, watched.reason or S.CANCELLED, "", None)
        if not state.dry_run and get_runner(step.step_type).gate:
            return _park_at_gate(state, step)
        outcome = step_invoke(state=state, step=step)
        record = step_record(state, step, outcome)
        result = outcome.result
        event = step_event(state, step, outcome, record)
        if watched.reason == "lease_lost":
            return "lease_lost"
        if watched.reason == "shutdown" and result.status != S.COMPLETED:
            return attempt_finish(state, "shutdown", "", None)  # the step runs again
        if result.status == S.COMPLETED:
            completed_any = True
            state.previous_outputs[step.step_index] = record["output"]
            state.previous_statuses[step.step_index] = result.status
        elif result.status in (S.CANCELLED, S.TIMEOUT):
            return attempt_finish(state, result.status, record["error"], (record, event))
        elif result.unreachable:
            # Nothing reached the target: a platform fault, retried by the queue's attempts
            # (then the DLQ), not by the step's max_retries nor passed by continue_on_error.
            error = f"step {step.step_index} ({step.step_name}): {record['error']}"
            return attempt_finish(state, "target_unreachable", error, (record, event))
        elif plan_step(ctx, step.step_index).get("continue_on_error"):
            had_failure = True
            state.previous_outputs[step.step_index] = record["output"]
            state.previous_statuses[step.step_index] = result.status
        else:
            error = f"step {step.step_index} ({step.step_name}) failed: {record['error']}"
            # The step's own max_retries (0 = one run); the queue's attempts are not spent.
            runs = retry_count_for(step)
            if runs < step.max_retries:
                error = f"{error} (retry {runs + 1} of {step.max_retries})"
                return attempt_finish(state, "step_retry", error, (record, event), retry_count=runs)
            return attempt_finish(state, S.FAILED, error, (record, event))
        if position + 1 == len(pending):
            if had_failure:
                final = S.PARTIAL if completed_any else S.FAILED
                return attempt_finish(state, final, "some steps failed", (record, event))
            return attempt_finish(state, S.COMPLETED, "", (record, event))
        following = pending[position + 1]
        if lock_scope(ctx) == LockScope.STEP:
            busy = _step_locks(state, step, following)
            if busy:
                return attempt_finish(state, "lock_wait", busy, (record, event))
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
            return attempt_finish(
                state, reason, "cancelled" if boundary.cancelled else "execution timeout", None
            )
    return attempt_finish(state, S.COMPLETED, "", None)  # nothing was left to run


def _park_at_gate(state: AttemptState, step: claim.StepRow) -> str:
    """An approval gate (docs/approvals.md#gates): the execution goes back to
    ``pending_approval`` and this worker is free; an approval queues it again and the next
    attempt starts after the gate. (A dry run passes its gates: nothing runs to approve.)"""
    ctx = state.ctx
    parked = gate_open(
        execution=state.execution,
        step_index=step.step_index,
        item_id=ctx.item_id,
        lease_token=ctx.lease_token,
        assets=state.assets,
    )
    if parked == "cancel":
        return attempt_finish(state, S.CANCELLED, "cancelled", None)
    if parked == "lease_lost":
        return "lease_lost"
    state.locks_released = True  # released by the park, or kept on purpose (hold_locks)
    return S.PENDING_APPROVAL


def _step_locks(state: AttemptState, ended: claim.StepRow, following: claim.StepRow) -> str:
    """``step`` scope between two steps: the locks of the step that ended are released, those
    of the next one taken; nothing is held while waiting. Busy: what it waits for (the
    execution then goes back to the queue and parks there), else ''."""
    ctx = state.ctx
    wanted = lock_requests(step_lock_targets(ctx, following))
    if wanted == state.held:
        return ""  # the next step locks what this one held: kept
    if state.assets:
        locks_give(execution=state.execution, assets=state.assets, reason=f"step {ended.step_index} ended")
    state.held, state.assets = [], []
    if not wanted:
        return ""
    busy = locks_take(
        tenant_id=ctx.tenant_id,
        execution_id=ctx.execution_id,
        owner=owner_tag(ctx.execution_id, worker_id()),
        requests=wanted,
        priority=ctx.priority,
    )
    if busy is not None:
        return f"waiting for {busy.describe()}"
    state.held, state.assets = wanted, [r.asset_id for r in wanted]
    return ""
