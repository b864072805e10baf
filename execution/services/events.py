"""The one place that writes an event row and the one place that publishes it.

``event_record`` appends to ``execution_events`` inside the caller's transaction;
``publish_event`` hands the event to the live-progress layer *after commit*, so nobody is
ever told about a change that was rolled back.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, transaction

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


def events_record(*, execution: Execution, events: list[dict[str, Any]]) -> list[ExecutionEvent]:
    """Append several events of one transaction in one multi-row INSERT; their pointer goes
    out as one NOTIFY with the highest id (delivered at commit), the publishers get each
    event after commit. Each dict holds :func:`event_record`'s keyword arguments."""
    # docs/contract.md#secrets-and-masking: this writer is a sink too
    values = secrets_of(execution.execution_id)
    rows = ExecutionEvent.objects.bulk_create(
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
    )
    notified = not settings.REDIS_URL
    if notified and rows:
        from execution.realtime.groups import PG_CHANNEL

        pointer = {"execution_id": str(execution.execution_id), "tenant_id": execution.tenant_id}
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_notify(%s, %s)", [PG_CHANNEL, json.dumps({**pointer, "event_id": rows[-1].pk})]
            )
    for row in rows:
        transaction.on_commit(partial(publish_event, row, pointer_sent=notified))
    return rows


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
