"""The end of an attempt: its outcome recorded by one ``finish`` statement (completed,
partial, failed, cancelled, timeout, a step retried with back-off, or dead-lettered;
docs/contract.md#state-machine).

A step that ran and failed is a result (docs/contract.md#truth): its own ``max_retries``
may run it again (``step_retry``: back to the queue after a back-off, the queue's attempt
not counted), else the execution fails; the queue never runs it again and it is never
dead-lettered. The queue's attempts and the DLQ are for faults of the platform (the reaper,
execution/services/reaper.py; a target the step could not reach, ``target_unreachable``
here) and an execution past its timeout.
"""

from __future__ import annotations

from typing import Any

from execution.enums import DlqFault, ExecutionStatus, QueueStatus
from execution.masking import mask_text
from execution.services.queue import backoff_seconds
from execution.worker import store
from execution.worker.steps import (
    AttemptState,
)
from opsconductor import telemetry

S = ExecutionStatus


def attempt_finish(
    state: AttemptState,
    outcome: str,
    error: str,
    last: tuple[dict[str, Any], dict[str, Any]] | None,
    *,
    retry_count: int = 0,
) -> str:
    """Record the last step, release the locks and record the outcome: one statement.
    ``step_retry``: the failed step (its ``retry_count`` this run) runs again later."""
    with telemetry.span("opsconductor.finish", outcome=outcome):
        return _attempt_finish(state, outcome, error, last, retry_count=retry_count)


def _attempt_finish(
    state: AttemptState,
    outcome: str,
    error: str,
    last: tuple[dict[str, Any], dict[str, Any]] | None,
    *,
    retry_count: int,
) -> str:
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
    common: dict[str, Any] = {"ctx": ctx, "done": done, "assets": state.assets}
    if outcome == "lock_wait":
        # ``step`` scope: the next step's lock is busy. Back to the queue at once, the attempt
        # not counted; the next claim parks it in the asset's line and resumes at that step.
        ended = _back_to_queue(common, events, delay=0, reason=error, give_back=True)
    elif outcome == "shutdown":
        # SIGTERM and the grace period is over: back to the queue at once, the attempt not
        # counted; the interrupted step runs again on the next attempt (docs/contract.md#queue-and-workers).
        ended = _back_to_queue(common, events, delay=0, reason="worker stopped (SIGTERM)", give_back=True)
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
    elif outcome == "target_unreachable":
        # A platform fault (docs/contract.md#truth): nothing reached the target. The queue's
        # attempt counts; another attempt after a back-off, past max_attempts the DLQ.
        if ctx.item_id is not None and ctx.attempt < ctx.max_attempts:
            delay = backoff_seconds(ctx.attempt)
            ended = _back_to_queue(
                common, events, delay=delay, reason=error, give_back=False, fault=DlqFault.TARGET_UNREACHABLE
            )
        else:
            events.append(
                {
                    "type": S.FAILED,
                    "from": S.RUNNING,
                    "to": S.FAILED,
                    "details": {"reason": error},
                    "error": error,
                }
            )
            ended = _dead_letter(common, events, to=S.FAILED, error=error, reason=DlqFault.TARGET_UNREACHABLE)
    elif outcome == "step_retry":
        # The step asked for it (max_retries): the queue's attempt is given back.
        delay = backoff_seconds(retry_count + 1)
        ended = _back_to_queue(common, events, delay=delay, reason=error, give_back=True)
    elif outcome == S.FAILED:
        events.append(
            {
                "type": S.FAILED,
                "from": S.RUNNING,
                "to": S.FAILED,
                "details": {"reason": error},
                "error": error,
            }
        )
        ended = store.finish(
            **common,
            to=S.FAILED,
            error=error[:4000],
            cancel_rest=True,
            queue_status=QueueStatus.FAILED,
            queue_error=error,
            events=events,
        )
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
        assert outcome == S.TIMEOUT, outcome
        events.append(
            {"type": outcome, "from": S.RUNNING, "to": outcome, "details": {"reason": error}, "error": error}
        )
        ended = _dead_letter(common, events, to=outcome, error=error, reason=DlqFault.EXECUTION_TIMEOUT)
    state.locks_released = ended
    return outcome if ended else "lease_lost"


def _dead_letter(
    common: dict[str, Any], events: list[dict[str, Any]], *, to: str, error: str, reason: str
) -> bool:
    """running -> ``to`` (failed, timeout) with the DLQ entry naming the fault ``reason``."""
    events.append(
        {
            "type": "dead_lettered",
            "details": {"reason": reason, "attempts": common["ctx"].attempt},
            "error": error[:2000],
            "when": "dlq",
        }
    )
    return store.finish(
        **common,
        to=to,
        error=error[:4000],
        cancel_rest=True,
        queue_status=QueueStatus.FAILED,
        queue_error=error,
        dlq_reason=reason,
        events=events,
    )


def _back_to_queue(
    common: dict[str, Any],
    events: list[dict[str, Any]],
    *,
    delay: float,
    reason: str,
    give_back: bool,
    fault: str | None = None,
) -> bool:
    """running -> queued with a ``retry_scheduled`` event, the item pending after ``delay``
    (``give_back``: the attempt does not count; ``fault``: the platform fault retried)."""
    details: dict[str, Any] = {"delay_seconds": round(delay, 3), "reason": reason}
    if fault:
        details["fault"] = fault
    events.append({"type": "retry_scheduled", "from": S.RUNNING, "to": S.QUEUED, "details": details})
    return store.finish(
        **common,
        to=S.QUEUED,
        error=None,
        cancel_rest=False,
        queue_status=QueueStatus.PENDING,
        queue_error=reason,
        delay_seconds=delay,
        give_back=give_back,
        events=events,
    )
