"""An execution's stored history for its page and its output download (docs/contract.md#operator-console).

The page renders the whole history from ``execution_events`` and then follows the socket
from the last id it rendered, so a reload shows exactly what a client that watched live saw.
Attempts are told apart by the ``started`` events (every claim of the execution by a worker
is one ``-> running`` transition): output after the n-th start belongs to attempt n.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from execution.models import Execution, ExecutionEvent, ExecutionStep
from execution.realtime.reader import event_messages

HISTORY_LIMIT = 5000  # events rendered on the page; the REST events endpoint pages the rest
START_EVENT = "started"
REASON_EVENTS = ("cancel_requested", "cancelled")


def execution_history(*, execution: Execution) -> list[ExecutionEvent]:
    """Every event of the execution (oldest first, up to ``HISTORY_LIMIT``), actors joined."""
    return list(
        ExecutionEvent.objects.filter(execution__execution_id=execution.execution_id)
        .select_related("actor")
        .order_by("id")[:HISTORY_LIMIT]
    )


def history_messages(events: list[ExecutionEvent]) -> list[dict[str, Any]]:
    """The same docs/contract.md#live-progress messages the socket sends, for the page to render before it
    goes live."""
    return event_messages(events)


# Events after which an execution no longer waits for a lock.
LOCK_WAIT_ENDS = frozenset({"lock_acquired", "started", "cancelled", "failed", "rejected", "timeout"})


def lock_waiting(execution: Execution, events: list[ExecutionEvent]) -> dict[str, Any] | None:
    """What a queued execution waits for (its last ``lock_wait``, unless something ended the
    wait since): the asset, why, and the execution holding it (docs/contract.md#asset-locks)."""
    if execution.status != "queued":
        return None
    for event in reversed(events):
        if event.event_type in LOCK_WAIT_ENDS:
            return None
        if event.event_type == "lock_wait":
            details = event.details or {}
            holder = str(details.get("holder_execution_id") or "")
            return {
                "reason": str(details.get("reason") or f"asset {details.get('asset_id')}"),
                "holder": holder if holder and holder != "unknown" else "",
                "ahead": str(details.get("ahead_execution_id") or ""),
            }
    return None


def cancel_reason(events: list[ExecutionEvent]) -> str:
    """Who cancelled and why, from the newest cancel event that says so."""
    for event in reversed(events):
        if event.event_type in REASON_EVENTS:
            reason = str((event.details or {}).get("reason") or "")
            who = event.actor.get_username() if event.actor_id and event.actor else ""
            if reason or who:
                return f"{reason} (by {who})" if who and reason else reason or f"by {who}"
    return ""


@dataclass
class Chunk:
    at: datetime
    stream: str
    text: str


@dataclass
class Attempt:
    number: int
    started_at: datetime | None
    chunks: list[Chunk] = field(default_factory=list)


def output_by_step(events: list[ExecutionEvent]) -> dict[int, list[Attempt]]:
    """step index -> its attempts that wrote output, each with timestamped chunks."""
    attempt, started = 0, None
    result: dict[int, dict[int, Attempt]] = {}
    for event in events:
        if event.event_type == START_EVENT:
            attempt, started = attempt + 1, event.created_at
            continue
        if event.event_type != "step_output" or event.step_index is None:
            continue
        details = event.details or {}
        number = max(attempt, 1)
        per_step = result.setdefault(event.step_index, {})
        slot = per_step.setdefault(number, Attempt(number=number, started_at=started))
        stream = str(details.get("stream") or "stdout")
        slot.chunks.append(Chunk(at=event.created_at, stream=stream, text=str(details.get("text", ""))))
    return {index: [attempts[n] for n in sorted(attempts)] for index, attempts in result.items()}


def output_text(*, execution: Execution, events: list[ExecutionEvent]) -> str:
    """Plain-text download of the stored (masked) output: step, attempt, time, stream, line."""
    plan = execution.plan_snapshot or {}
    names = dict(
        ExecutionStep.objects.filter(execution__execution_id=execution.execution_id).values_list(
            "step_index", "step_name"
        )
    )
    lines = [
        f"# {plan.get('name', '')}",
        f"# execution {execution.execution_id} tenant {execution.tenant.slug} status {execution.status}",
    ]
    if execution.error_message:
        lines.append(f"# error: {execution.error_message}")
    for index, attempts in sorted(output_by_step(events).items()):
        for attempt in attempts:
            lines.append(f"== step {index} {names.get(index, '')} · attempt {attempt.number}")
            for chunk in attempt.chunks:
                stamp = chunk.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
                for line in chunk.text.splitlines() or [""]:
                    lines.append(f"{stamp} {chunk.stream:<6} {line}")
    return "\n".join(lines) + "\n"
