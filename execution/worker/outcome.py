"""The end of an attempt: its outcome recorded by one ``finish`` statement (completed,
partial, cancelled, timeout, retried with back-off, or dead-lettered; docs/contract.md#state-machine).
"""

from __future__ import annotations

from typing import Any

from execution.enums import ExecutionStatus, QueueStatus
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
    may_retry: bool = True,
) -> str:
    """Record the last step, release the locks and record the outcome: one statement."""
    with telemetry.span("opsconductor.finish", outcome=outcome):
        return _attempt_finish(state, outcome, error, last, may_retry=may_retry)


def _attempt_finish(
    state: AttemptState,
    outcome: str,
    error: str,
    last: tuple[dict[str, Any], dict[str, Any]] | None,
    *,
    may_retry: bool,
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
    elif outcome == S.FAILED and may_retry and ctx.item_id is not None and ctx.attempt < ctx.max_attempts:
        delay = backoff_seconds(ctx.attempt)
        ended = _back_to_queue(common, events, delay=delay, reason=error, give_back=False)
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


def _back_to_queue(
    common: dict[str, Any], events: list[dict[str, Any]], *, delay: float, reason: str, give_back: bool
) -> bool:
    """running -> queued with a ``retry_scheduled`` event, the item pending after ``delay``
    (``give_back``: the attempt does not count)."""
    events.append(
        {
            "type": "retry_scheduled",
            "from": S.RUNNING,
            "to": S.QUEUED,
            "details": {"delay_seconds": round(delay, 3), "reason": reason},
        }
    )
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
