"""The one place that writes an event row and the one place that publishes it.

``event_record`` appends to ``execution_events`` inside the caller's transaction;
``publish_event`` hands the event to the live-progress layer *after commit*, so nobody is
ever told about a change that was rolled back.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from execution.enums import ActorType
from execution.masking import mask_data, mask_text, secrets_of
from execution.models import Execution, ExecutionEvent

logger = logging.getLogger(__name__)

# The live-progress layer installs its sender here (a pointer: execution, tenant, event id).
_publishers: list[Callable[[ExecutionEvent], None]] = []
# Publishers that only carry the pointer as a PostgreSQL NOTIFY: skipped for events whose
# statement already sent it (the worker's store, execution/worker/store.py).
_pointer_publishers: set[Callable[[ExecutionEvent], None]] = set()


def register_publisher(func: Callable[[ExecutionEvent], None], *, pg_pointer: bool = False) -> None:
    if func not in _publishers:
        _publishers.append(func)
    if pg_pointer:
        _pointer_publishers.add(func)


def event_record(
    *,
    execution: Execution,
    event_type: str,
    actor: Any = None,
    actor_type: str = ActorType.SYSTEM,
    from_status: str | None = None,
    to_status: str | None = None,
    details: dict[str, Any] | None = None,
    error_message: str = "",
    step_index: int | None = None,
) -> ExecutionEvent:
    """Append one event row (in the current transaction) and publish it after commit.

    A sink of docs/contract.md#secrets-and-masking: details and error message are masked here
    once more with the values resolved for the execution in this process, whatever the caller already did.
    """
    values = secrets_of(execution.execution_id)
    event = ExecutionEvent.objects.create(
        execution_id=execution.execution_id,
        tenant_id=execution.tenant_id,
        event_type=event_type,
        actor=actor if getattr(actor, "pk", None) else None,
        actor_type=actor_type,
        from_status=from_status,
        to_status=to_status,
        details=mask_data(details or {}, values),
        error_message=mask_text(error_message, values),
        step_index=step_index,
        trace_id=execution.trace_id,
    )
    transaction.on_commit(lambda: publish_event(event))
    return event


def events_rows(*, execution: Execution, events: list[dict[str, Any]]) -> list[ExecutionEvent]:
    """The rows of several events of one execution, masked and not yet saved, for a caller
    that writes them with its own statement (:data:`EVENTS_CTE`), followed by
    :func:`events_committed`. Each dict holds :func:`event_record`'s keyword arguments."""
    # docs/contract.md#secrets-and-masking: this writer is a sink too
    values = secrets_of(execution.execution_id)
    return [
        ExecutionEvent(
            execution_id=execution.execution_id,
            tenant_id=execution.tenant_id,
            event_type=e["event_type"],
            actor=e.get("actor") if getattr(e.get("actor"), "pk", None) else None,
            actor_type=e.get("actor_type", ActorType.SYSTEM),
            from_status=e.get("from_status"),
            to_status=e.get("to_status"),
            details=mask_data(e.get("details") or {}, values),
            error_message=mask_text(e.get("error_message", ""), values),
            step_index=e.get("step_index"),
            trace_id=execution.trace_id,
        )
        for e in events
    ]


# The INSERT of :func:`events_rows` as the data-modifying CTE ``ev`` of a caller's statement
# (one multi-row INSERT; its parameters from :func:`events_cte_params`). With
# :data:`EVENTS_POINTER_SQL` in the statement's SELECT list, the pointer of the last event
# goes out as one NOTIFY (delivered at commit).
EVENTS_CTE = """ev AS (
    INSERT INTO execution_events (event_id, execution_id, event_type, from_status, to_status, actor_id,
                                  actor_type, details, error_message, created_at, trace_id, tenant_id,
                                  step_index)
    SELECT * FROM UNNEST(
        %(ev_event_id)s::uuid[], %(ev_execution_id)s::uuid[], %(ev_event_type)s::varchar[],
        %(ev_from)s::execution_status[], %(ev_to)s::execution_status[], %(ev_actor)s::integer[],
        %(ev_actor_type)s::varchar[], %(ev_details)s::jsonb[], %(ev_error)s::text[],
        %(ev_created_at)s::timestamptz[], %(ev_trace_id)s::varchar[], %(ev_tenant)s::bigint[],
        %(ev_step_index)s::integer[])
    RETURNING id, event_id)"""
EVENTS_POINTER_SQL = """CASE WHEN %(ev_notify)s THEN pg_notify(%(ev_channel)s, json_build_object(
    'execution_id', %(ev_pointer_execution)s::text, 'tenant_id', %(ev_pointer_tenant)s::bigint,
    'event_id', (SELECT max(id) FROM ev))::text) END"""


def events_cte_params(rows: list[ExecutionEvent], *, created_at: Any) -> dict[str, Any]:
    """The parameters of :data:`EVENTS_CTE` and :data:`EVENTS_POINTER_SQL` for ``rows`` (of one execution)."""
    from execution.realtime.groups import PG_CHANNEL

    for row in rows:
        row.created_at = created_at
    return {
        "ev_event_id": [r.event_id for r in rows],
        "ev_execution_id": [r.execution_id for r in rows],
        "ev_event_type": [r.event_type for r in rows],
        "ev_from": [r.from_status for r in rows],
        "ev_to": [r.to_status for r in rows],
        "ev_actor": [r.actor_id for r in rows],
        "ev_actor_type": [r.actor_type for r in rows],
        "ev_details": [json.dumps(r.details) for r in rows],
        "ev_error": [r.error_message for r in rows],
        "ev_created_at": [created_at for _ in rows],
        "ev_trace_id": [r.trace_id for r in rows],
        "ev_tenant": [r.tenant_id for r in rows],
        "ev_step_index": [r.step_index for r in rows],
        # With Redis the publisher sends the pointer itself after commit.
        "ev_notify": not settings.REDIS_URL,
        "ev_channel": PG_CHANNEL,
        "ev_pointer_execution": str(rows[0].execution_id),
        "ev_pointer_tenant": rows[0].tenant_id,
    }


def events_committed(rows: list[ExecutionEvent], ids: dict[Any, int]) -> None:
    """``rows`` were written by :data:`EVENTS_CTE` (``ids``: event_id -> id, its RETURNING):
    each goes to the publishers after commit (the NOTIFY publisher is skipped when the
    statement sent the pointer)."""
    pointer_sent = not settings.REDIS_URL
    for row in rows:
        row.pk = ids[row.event_id]
        row._state.adding = False
        row._state.db = "default"
        transaction.on_commit(partial(publish_event, row, pointer_sent=pointer_sent))


def events_write(*, execution: Execution, events: list[dict[str, Any]]) -> None:
    """Write several events of one execution in one statement (:data:`EVENTS_CTE`, its pointer
    NOTIFY included) and publish each after commit; for a writer with no statement of its
    own to join (a fleet step's target events, execution/worker/fanout.py)."""
    if not events:
        return
    rows = events_rows(execution=execution, events=events)
    params = events_cte_params(rows, created_at=timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH {EVENTS_CTE} SELECT (SELECT array_agg(ARRAY[id::text, event_id::text]) FROM ev), "  # noqa: S608
            f"{EVENTS_POINTER_SQL}",
            params,
        )
        ids = cursor.fetchone()[0]
    events_committed(rows, {uuid.UUID(event_id): int(id_) for id_, event_id in ids})


def publish_event(event: ExecutionEvent, *, pointer_sent: bool = False) -> None:
    """Send an already committed event to every registered publisher; never raises.

    ``pointer_sent``: the statement that wrote the event already sent its pointer as a
    NOTIFY, so the NOTIFY publisher is skipped."""
    logger.debug("event %s %s execution=%s", event.pk, event.event_type, event.execution_id)
    for publisher in list(_publishers):
        if pointer_sent and publisher in _pointer_publishers:
            continue
        try:
            publisher(event)
        except Exception:  # a broken publisher must not break the state change
            logger.exception("publishing event %s failed", event.pk)
