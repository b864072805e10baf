"""The one place that writes an event row and the one place that publishes it.

``event_record`` appends to ``execution_events`` inside the caller's transaction;
``publish_event`` hands the event to the live-progress layer *after commit*, so nobody is
ever told about a change that was rolled back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction

from execution.enums import ActorType
from execution.masking import mask_data, mask_text, secrets_of
from execution.models import Execution, ExecutionEvent

logger = logging.getLogger(__name__)

# The live-progress layer installs its sender here (a pointer: execution, tenant, event id).
_publishers: list[Callable[[ExecutionEvent], None]] = []


def register_publisher(func: Callable[[ExecutionEvent], None]) -> None:
    if func not in _publishers:
        _publishers.append(func)


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

    A sink of §10: details and error message are masked here once more with the values
    resolved for the execution in this process, whatever the caller already did.
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


def publish_event(event: ExecutionEvent) -> None:
    """Send an already committed event to every registered publisher; never raises."""
    logger.debug("event %s %s execution=%s", event.pk, event.event_type, event.execution_id)
    for publisher in list(_publishers):
        try:
            publisher(event)
        except Exception:  # a broken publisher must not break the state change
            logger.exception("publishing event %s failed", event.pk)
