"""One state-writing primitive (docs/contract.md#truth): every legal edge of the state machine,
written once by ``transition()`` (the ORM path) and once by a set-based statement composed of
the worker's own fragments (``status_set_sql`` and the store's event insert), gives the same
execution row, the same event and the same notifications."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from execution.enums import FINISHED_STATUSES, ActorType
from execution.enums import ExecutionStatus as S
from execution.models import Execution, ExecutionEvent
from execution.services.transition import transition
from execution.state_machine import EVENT_FOR_STATUS, LEGAL_TRANSITIONS, status_set_sql
from execution.worker.sql import EVENTS, EVENTS_OUT, events_published, statement_params
from monitoring.notifications.dispatch import notifications_dispatch
from monitoring.notifications.models import Kind, NotificationDelivery
from tests.factories import ExecutionFactory, NotificationSubscriptionFactory

pytestmark = pytest.mark.django_db(transaction=True)

EDGES = sorted((a, b) for a, targets in LEGAL_TRANSITIONS.items() for b in targets)

SET_BASED = f"""
WITH x AS (
    UPDATE executions e SET {status_set_sql("%(to)s")}
    WHERE e.id = %(pk)s AND e.status = %(expected)s::execution_status
    RETURNING e.execution_id, e.tenant_id, e.trace_id
),
{EVENTS.format(anchor="x", when="true")}
SELECT {EVENTS_OUT} FROM x
"""


def _set_based(execution: Execution, to: str, reason: str) -> None:
    event = {"type": EVENT_FOR_STATUS[to], "from": execution.status, "to": to, "details": {"reason": reason}}
    params = statement_params(
        execution.execution_id, [event], pk=execution.pk, expected=execution.status, to=to
    )
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(SET_BASED, params)
        row = cur.fetchone()
        assert row is not None, "the compare-and-swap lost"
        events_published(row[1])


def _at(tenant: Any, operator: Any, status: str) -> Execution:
    before = timezone.now() - timedelta(minutes=5)
    ran = status not in (S.PENDING_APPROVAL, S.APPROVED, S.QUEUED, S.REJECTED)
    return ExecutionFactory(  # type: ignore[no-any-return]
        tenant=tenant,
        actor=operator,
        status=status,
        environment="dev",
        started_at=before if ran else None,
        completed_at=before if status in FINISHED_STATUSES else None,
        status_changed_at=before,
    )


def _row(execution: Execution) -> dict[str, Any]:
    fresh = Execution.objects.get(pk=execution.pk)
    return {
        "status": fresh.status,
        "previous_status": fresh.previous_status,
        "changed": fresh.status_changed_at > execution.status_changed_at,
        # None, kept as it was, or written now
        "started_at": _when(fresh.started_at, execution.started_at),
        "completed_at": _when(fresh.completed_at, execution.completed_at),
    }


def _when(value: Any, before: Any) -> str:
    if value is None:
        return "none"
    return "kept" if value == before else "now"


def _event(execution: Execution) -> tuple[Any, ...]:
    event = ExecutionEvent.objects.filter(execution=execution).order_by("-id").first()
    assert event is not None
    return (
        event.event_type,
        event.from_status,
        event.to_status,
        event.details,
        event.error_message,
        event.actor_type,
    )


def _notifications(execution: Execution) -> list[str]:
    for event in ExecutionEvent.objects.filter(execution=execution):
        notifications_dispatch(event_id=event.pk)
    return sorted(
        NotificationDelivery.objects.filter(execution_id=execution.execution_id).values_list(
            "kind", flat=True
        )
    )


@pytest.mark.parametrize(("current", "to"), EDGES, ids=[f"{a}->{b}" for a, b in EDGES])
def test_every_legal_edge_writes_the_same_row_event_and_notifications_through_both_paths(
    tenant: Any, operator: Any, current: str, to: str
) -> None:
    NotificationSubscriptionFactory(tenant=tenant, kinds=[k.value for k in Kind], channel="webhook")
    orm, set_based = _at(tenant, operator, current), _at(tenant, operator, current)
    transition(orm, to, actor_type=ActorType.WORKER, reason="walked")
    _set_based(set_based, to, "walked")
    assert _row(orm) == _row(set_based)
    row = _row(orm)
    assert row["status"] == to and row["previous_status"] == current and row["changed"]
    assert _event(orm) == _event(set_based)
    assert _notifications(orm) == _notifications(set_based)


def test_the_worker_statements_are_built_from_the_one_definition() -> None:
    from execution.worker import store

    for statement in (store.START_SQL, store.INLINE_SQL, store.FINISH_SQL):
        assert "status_changed_at = now()" in statement and "CASE WHEN" in statement
