"""Reading a stream of events from ``execution_events`` for a consumer, gap-free
(docs/contract.md#live-progress).

Ids come from one sequence but transactions commit in any order: event 21 can be visible
while event 20 is still being committed by another process. A consumer that sent 21 and
moved its cursor past 20 would never send 20. So a read stops at the first *hole* (an id
below the newest candidate that no committed row holds) until the hole is settled:
- the row appears (its transaction committed) and is sent in order; or
- no other session holds a write lock on ``execution_events`` any more (checked *after* the
  read, then the hole is re-checked), so the hole's transaction rolled back; or
- the next existing event after the hole is older than ``HOLE_PATIENCE_SECONDS`` (a writer
  that keeps an event uncommitted for that long loses its place in live order; the event
  is still in the table and in the REST history).
Holes are only looked for among recent ids, so a replay of old history costs nothing extra.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from execution.masking import mask_data
from execution.models import Execution, ExecutionEvent
from execution.services.progress import progress_for

READ_LIMIT = 200
EVENT_TYPE_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_TYPES = 32
HOLE_PATIENCE_SECONDS = 5.0


@dataclass
class StreamRead:
    messages: list[dict[str, Any]]
    held_back: bool  # a hole stopped the read: try again shortly
    more: bool  # the limit was reached: read again at once


def _holes(after: int, upto: int) -> list[int]:
    """Ids in (after, upto) held by no committed row, among the recent ones only."""
    with connection.cursor() as cursor:
        # Everything up to the newest event older than the patience is settled. A backward
        # scan of the primary key from ``upto`` stops at the first old row.
        cursor.execute(
            "SELECT id FROM execution_events WHERE id > %s AND id <= %s AND created_at < %s "
            "ORDER BY id DESC LIMIT 1",
            [after, upto, timezone.now() - timedelta(seconds=HOLE_PATIENCE_SECONDS)],
        )
        row = cursor.fetchone()
        low = max(after, row[0] if row else after)
        if upto - low <= 1:
            return []
        cursor.execute(
            "SELECT g.i FROM generate_series(%s, %s) AS g(i) "
            "WHERE NOT EXISTS (SELECT 1 FROM execution_events e WHERE e.id = g.i) ORDER BY g.i",
            [low + 1, upto - 1],
        )
        return [r[0] for r in cursor.fetchall()]


def _writers_active() -> bool:
    """Does any other session hold an uncommitted write on execution_events right now?"""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'relation' "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND relation = 'execution_events'::regclass AND mode = 'RowExclusiveLock' "
            "AND pid <> pg_backend_pid())"
        )
        return bool(cursor.fetchone()[0])


def _repeatable_read() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")


def _settled_rows(
    rows: list[ExecutionEvent], after: int, holes: list[int]
) -> tuple[list[ExecutionEvent], bool]:
    if not rows or not holes:
        return rows, False
    if not _writers_active():
        # Nobody is writing now: a hole is either committed by now (the caller re-reads and
        # finds it) or rolled back (skip it). Re-check which.
        still = set(_holes(after, rows[-1].pk))
        if not still:
            return [], True  # rows appeared: re-read in order
        if still == set(holes):
            return rows, False  # all rolled back
        return [], True
    first = holes[0]
    return [r for r in rows if r.pk < first], True


def event_types_parse(raw: str | None) -> frozenset[str] | None:
    """``?types=a,b``: the event types a client wants (None = all); ValueError names the problem."""
    if raw is None or not raw.strip():
        return None
    types = frozenset(t.strip() for t in raw.split(",") if t.strip())
    if len(types) > MAX_TYPES:
        raise ValueError(f"at most {MAX_TYPES} event types")
    bad = sorted(t for t in types if not EVENT_TYPE_RE.match(t))
    if bad:
        raise ValueError(f"not an event type: {bad[0][:64]!r}")
    return types


def stream_read(
    *,
    after: int,
    execution_id: Any = None,
    tenant_id: int | None = None,
    types: Collection[str] | None = None,
) -> StreamRead:
    """The next events of one execution's (or one tenant's) stream after id ``after``.

    ``types`` keeps only those event types (replay included); holes are still judged on
    every id, so a filtered stream is as gap-free as the whole one.
    """
    qs = ExecutionEvent.objects.filter(pk__gt=after).select_related("actor")
    if execution_id is not None:
        qs = qs.filter(execution_id=execution_id)
    if tenant_id is not None:
        qs = qs.filter(tenant_id=tenant_id)
    if types is not None:
        qs = qs.filter(event_type__in=sorted(types))
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost:  # SET TRANSACTION must be the first statement of the transaction
            _repeatable_read()
        # One snapshot for the candidates and their holes: a row committed between two
        # separate reads would otherwise be neither a candidate nor a hole, and be skipped.
        rows = list(qs.order_by("pk")[:READ_LIMIT])
        more = len(rows) == READ_LIMIT
        holes = _holes(after, rows[-1].pk) if rows else []
    rows, held_back = _settled_rows(rows, after, holes)
    if held_back:
        more = False
    return StreamRead(messages=event_messages(rows), held_back=held_back, more=more and bool(rows))


def stream_head(*, execution_id: Any = None, tenant_id: int | None = None) -> int:
    """The id of the newest event of a stream (0 when empty): where a live-only client starts."""
    qs = ExecutionEvent.objects.all()
    if execution_id is not None:
        qs = qs.filter(execution_id=execution_id)
    if tenant_id is not None:
        qs = qs.filter(tenant_id=tenant_id)
    last = qs.order_by("-pk").values_list("pk", flat=True).first()
    return int(last or 0)


def event_messages(rows: list[ExecutionEvent]) -> list[dict[str, Any]]:
    """docs/contract.md#live-progress messages for a batch of events; progress computed once per execution
    per batch."""
    if not rows:
        return []
    executions = {
        e.execution_id: e for e in Execution.objects.filter(execution_id__in={r.execution_id for r in rows})
    }
    progress = {eid: progress_for(execution=ex) for eid, ex in executions.items()}
    return [event_message(r, progress.get(r.execution_id)) for r in rows]


def event_message(event: ExecutionEvent, progress: dict[str, Any] | None) -> dict[str, Any]:
    data: dict[str, Any] = dict(event.details or {})
    if event.error_message:
        data["error_message"] = event.error_message
    if event.actor_type:
        data.setdefault("actor_type", event.actor_type)
    if event.actor_id is not None and event.actor is not None:  # rows are read with the actor joined
        data.setdefault("actor", event.actor.get_username())
    return {
        "id": event.pk,
        "type": event.event_type,
        "execution_id": str(event.execution_id),
        "step_index": event.step_index,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "progress": progress,
        "data": mask_data(data),
        "created_at": event.created_at.isoformat(),
    }
