"""Live-progress services (docs/contract.md#live-progress): batched step output and the progress of an
execution.

``step_output_record`` turns chunks of a running step's output into ``step_output`` events:
masked, then capped per event and per step (a value split across two chunks is held back
until it is whole, so it is masked whole), and batched so that one execution writes at most
``STEP_OUTPUT_EVENTS_PER_SECOND`` output flushes per second however chatty its command is.
Output arriving faster is buffered and written by the next allowed flush (a timer makes sure
a trailing chunk is not held forever); the engine calls ``step_output_flush`` before it
records the end of a step so that output never trails the step's ``step_completed``.

``progress_for`` computes percent, steps done/total and an ETA from the history of step
durations (per step name and type where there is history, else per type). A plan with fleet
steps also counts targets: ``targets_done``/``targets_total``, and a running fleet step adds
the share of its targets that ended to the percent (docs/fleet.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import close_old_connections, transaction
from django.db.models import Count
from django.utils import timezone

from execution.enums import FINISHED_STATUSES, TARGETS_UNFINISHED, ActorType, ExecutionStatus
from execution.masking import mask_capped
from execution.models import Execution, ExecutionStep, StepTarget
from execution.services.events import event_record

STEP_OUTPUT_CHUNK_LIMIT = 4096  # characters per step_output event
STEP_OUTPUT_STEP_LIMIT = 64 * 1024  # characters of live output per step; the rest is dropped
# Raw characters kept past a limit until the flush masks them: a secret cut by the limit is
# still whole when masking runs (masking happens before capping, docs/contract.md#secrets-and-masking).
MASK_MARGIN = 1024
STEP_OUTPUT_EVENTS_PER_SECOND = 4  # flushes per execution per second (one event per stream)
PENDING_PRUNE_AT = 256  # executions with output state in this process before idle ones go


@dataclass
class _Pending:
    execution: Execution
    secrets: tuple[str, ...] = ()
    # (step_index, stream) -> buffered text, in arrival order
    chunks: dict[tuple[int, str], str] = field(default_factory=dict)
    sent_per_step: dict[int, int] = field(default_factory=dict)
    dropped: dict[tuple[int, str], int] = field(default_factory=dict)
    last_flush: float = 0.0
    timer: threading.Timer | None = None


_lock = threading.Lock()
_pending: dict[str, _Pending] = {}


def step_output_record(
    *, execution: Execution, step_index: int, stream: str, text: str, secrets: tuple[str, ...] = ()
) -> None:
    """Buffer one chunk of a running step's output; write it as events within the rate bound."""
    if not text:
        return
    key = str(execution.execution_id)
    flush_now = False
    with _lock:
        if len(_pending) > PENDING_PRUNE_AT:
            _prune_idle(time.monotonic())
        state = _pending.setdefault(key, _Pending(execution=execution))
        state.secrets = tuple(sorted(set(state.secrets) | set(secrets)))
        slot = (step_index, stream)
        buffered = state.chunks.get(slot, "") + text
        room = STEP_OUTPUT_STEP_LIMIT - state.sent_per_step.get(step_index, 0)
        limit = max(0, min(STEP_OUTPUT_CHUNK_LIMIT, room))
        if len(buffered) > limit + MASK_MARGIN:
            state.dropped[slot] = state.dropped.get(slot, 0) + len(buffered) - limit - MASK_MARGIN
            buffered = buffered[: limit + MASK_MARGIN]
        state.chunks[slot] = buffered
        wait = state.last_flush + 1.0 / STEP_OUTPUT_EVENTS_PER_SECOND - time.monotonic()
        if wait <= 0:
            flush_now = True
        elif state.timer is None:
            state.timer = threading.Timer(wait, _flush_from_timer, args=(key,))
            state.timer.daemon = True
            state.timer.start()
    if flush_now:
        _flush(key, final=False)


def _prune_idle(now: float) -> None:
    for key in [k for k, st in _pending.items() if not st.chunks and now - st.last_flush > 60]:
        del _pending[key]


def step_output_emitter(
    *, execution: Execution, step_index: int, secrets: tuple[str, ...] = ()
) -> Callable[[str, str], None]:
    """The ``StepContext.emit_output`` the engine gives a runner: chunks go to step_output_record."""

    def emit(stream: str, text: str) -> None:
        step_output_record(
            execution=execution, step_index=step_index, stream=stream, text=text, secrets=secrets
        )

    return emit


def step_output_flush(*, execution: Execution, step_index: int | None = None) -> int:
    """Write whatever output of ``execution`` is buffered now; returns the events written."""
    return _flush(str(execution.execution_id), step_index=step_index, final=True)


def _flush_from_timer(key: str) -> None:
    try:
        _flush(key, final=False)
    finally:
        close_old_connections()  # this thread's connection must not linger


def _held_tail(text: str, secrets: tuple[str, ...]) -> int:
    """Length of the longest tail of ``text`` that is the start of a secret (0 if none)."""
    longest = max((len(s) for s in secrets), default=0)
    for size in range(min(longest - 1, len(text)), 0, -1):
        tail = text[-size:]
        if any(len(s) > size and s.startswith(tail) for s in secrets):
            return size
    return 0


def _flush(key: str, step_index: int | None = None, *, final: bool) -> int:
    with _lock:
        state = _pending.get(key)
        if state is None:
            return 0
        if state.timer is not None:
            state.timer.cancel()
            state.timer = None
        slots = [s for s in state.chunks if step_index is None or s[0] == step_index]
        batch = [(slot, state.chunks.pop(slot), state.dropped.pop(slot, 0)) for slot in slots]
        if not final:  # a secret's first characters wait for the rest of it
            for position, (slot, text, dropped) in enumerate(batch):
                held = _held_tail(text, state.secrets) if not dropped else 0
                if held:
                    state.chunks[slot] = text[-held:]
                    batch[position] = (slot, text[:-held], dropped)
        for (index, _stream), text, _ in batch:
            state.sent_per_step[index] = state.sent_per_step.get(index, 0) + len(text)
        state.last_flush = time.monotonic()
        execution, secrets = state.execution, state.secrets
        if final and not state.chunks and execution.status in FINISHED_STATUSES:
            _pending.pop(key, None)
    written = 0
    for (index, stream), text, dropped in batch:
        if not text and not dropped:
            continue
        with transaction.atomic():
            event_record(
                execution=execution,
                event_type="step_output",
                actor_type=ActorType.WORKER,
                step_index=index,
                details={
                    "stream": stream,
                    "text": mask_capped(text, secrets, cap=STEP_OUTPUT_CHUNK_LIMIT),
                    "truncated": dropped > 0 or len(text) > STEP_OUTPUT_CHUNK_LIMIT,
                    "dropped_chars": dropped,
                },
            )
        written += 1
    return written


def step_output_forget(*, execution: Execution) -> None:
    """Flush and drop the per-process output state of a finished execution."""
    step_output_flush(execution=execution)
    with _lock:
        state = _pending.pop(str(execution.execution_id), None)
        if state is not None and state.timer is not None:
            state.timer.cancel()


# --- progress and ETA ---------------------------------------------------------------------

HISTORY_SAMPLE = 50  # most recent completed steps averaged per (type[, name])
HISTORY_TTL_SECONDS = 30.0
_history: dict[tuple[str, str], tuple[float, float | None]] = {}


def _average_ms(step_type: str, step_name: str | None, *, cached_only: bool = False) -> float | None:
    key = (step_type, step_name or "")
    cached = _history.get(key)
    now = time.monotonic()
    if cached is not None and (cached_only or now - cached[0] < HISTORY_TTL_SECONDS):
        return cached[1]
    if cached_only:
        return None
    # Uses the steps_type_status index (step_type, status).
    qs = ExecutionStep.objects.filter(
        step_type=step_type, status=ExecutionStatus.COMPLETED, duration_ms__isnull=False
    )
    if step_name is not None:
        qs = qs.filter(step_name=step_name)
    recent = qs.order_by("-id").values_list("duration_ms", flat=True)[:HISTORY_SAMPLE]
    durations = [d for d in recent if d is not None]
    value = sum(durations) / len(durations) if durations else None
    _history[key] = (now, value)
    return value


def step_expected_ms(*, step_type: str, step_name: str, cached_only: bool = False) -> float | None:
    """Expected duration of a step: history of the same name and type, else of the type."""
    by_name = _average_ms(step_type, step_name, cached_only=cached_only)
    return by_name if by_name is not None else _average_ms(step_type, None, cached_only=cached_only)


def progress_for(
    *, execution: Execution, steps: list[ExecutionStep] | None = None, cached_history: bool = False
) -> dict[str, Any]:
    """Percent, steps done/total and ETA of an execution: seconds, 0 once it finished, None
    while it has no ETA to give (a remaining step without any history, the estimate already
    past).

    ``steps``: its step rows when the caller has them; ``cached_history``: the ETA from this
    process's history cache only (a fresh submission's answer costs no query; None when the
    process has no history yet)."""
    if steps is None:
        rows = list(
            ExecutionStep.objects.filter(execution__execution_id=execution.execution_id).values(
                "step_name", "step_type", "status", "started_at"
            )
        )
    else:
        rows = [
            {
                "step_name": s.step_name,
                "step_type": s.step_type,
                "status": s.status,
                "started_at": s.started_at,
            }
            for s in steps
        ]
    steps_total = rows
    total = len(steps_total)
    done = sum(1 for s in steps_total if s["status"] in FINISHED_STATUSES)
    fleet = _fleet_targets(execution)
    counted: dict[str, Any] = {}
    if fleet:
        counted = {
            "targets_done": sum(ended for ended, _ in fleet.values()),
            "targets_total": sum(of for _, of in fleet.values()),
        }
    if execution.status in FINISHED_STATUSES:
        percent = 100 if execution.status == ExecutionStatus.COMPLETED or total == 0 else done * 100 // total
        return {"percent": percent, "steps_done": done, "steps_total": total, "eta_seconds": 0, **counted}
    # A fleet step that has not ended counts for the share of its targets that did.
    share = sum(
        ended / of
        for index, (ended, of) in (fleet or {}).items()
        if of and index < total and steps_total[index]["status"] not in FINISHED_STATUSES
    )
    percent = int((done + share) * 100 // total) if total else 0
    now = timezone.now()
    eta_ms = 0.0
    # Without any history of a step, its share of the plan's own estimate stands in.
    estimate = (execution.plan_snapshot or {}).get("estimated_duration_seconds")
    share_ms = float(estimate) * 1000 / total if isinstance(estimate, int | float) and total else None
    for step in steps_total:
        if step["status"] in FINISHED_STATUSES:
            continue
        expected = step_expected_ms(
            step_type=step["step_type"], step_name=step["step_name"], cached_only=cached_history
        )
        if expected is None:
            expected = share_ms
        if expected is None:
            return {
                "percent": percent,
                "steps_done": done,
                "steps_total": total,
                "eta_seconds": None,
                **counted,
            }
        if step["status"] == ExecutionStatus.RUNNING and step["started_at"] is not None:
            expected -= (now - step["started_at"]).total_seconds() * 1000
        eta_ms += max(expected, 0.0)
    # An unfinished execution never shows ETA 0: the estimate is already past (overdue), or
    # nothing is left to estimate; either way there is no ETA to give.
    eta = round(eta_ms / 1000)
    return {
        "percent": percent,
        "steps_done": done,
        "steps_total": total,
        "eta_seconds": eta if eta > 0 else None,
        **counted,
    }


def _fleet_targets(execution: Execution) -> dict[int, tuple[int, int]]:
    """Per fleet step index: (its targets that ended, its targets); one query, none for a plan
    without fleet steps (the snapshot holds each fleet step's resolved targets)."""
    steps = (execution.plan_snapshot or {}).get("steps") or []
    totals = {
        i: len(step["targets"])
        for i, step in enumerate(steps)
        if isinstance(step, dict) and isinstance(step.get("targets"), list)
    }
    if not totals:
        return {}
    ended = dict(
        StepTarget.objects.filter(execution_id=execution.execution_id)
        .exclude(status__in=TARGETS_UNFINISHED)
        .values_list("step_index")
        .annotate(n=Count("id"))
        .values_list("step_index", "n")
    )
    return {i: (ended.get(i, 0), of) for i, of in totals.items()}
