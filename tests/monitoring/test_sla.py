"""SLA violation detection: each violation gives one alert row and one sla_violation event."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from execution.enums import ExecutionStatus, QueueStatus, SlaClass
from execution.models import ExecutionEvent
from monitoring.models import SlaAlert
from monitoring.services.sla import sla_violations_detect
from monitoring.tasks import sla_sweep
from opsconductor.schedules import SCHEDULES
from tests.factories import ExecutionFactory, QueueItemFactory


def _overdue(**extra: Any) -> Any:
    now = timezone.now()
    return ExecutionFactory(
        status=ExecutionStatus.RUNNING,
        started_at=now - timedelta(seconds=30),
        timeout_at=now - timedelta(seconds=5),
        **extra,
    )


@pytest.mark.django_db
def test_execution_past_timeout_alerts_exactly_once(capture_events: Any) -> None:
    execution = _overdue()
    first = sla_violations_detect()
    second = sla_violations_detect()
    assert len(first.alerts) == 1 and second.alerts == []
    alert = SlaAlert.objects.get()
    assert alert.kind == SlaAlert.Kind.EXECUTION_TIMEOUT
    assert alert.execution_id == execution.execution_id
    assert alert.limit_seconds == pytest.approx(25, abs=0.5)
    events = ExecutionEvent.objects.filter(execution=execution, event_type="sla_violation")
    assert events.count() == 1
    assert events.get().details["kind"] == "execution_timeout"
    assert alert.event_id == events.get().pk


@pytest.mark.django_db
def test_finished_or_not_yet_due_executions_do_not_alert() -> None:
    now = timezone.now()
    ExecutionFactory(status=ExecutionStatus.COMPLETED, timeout_at=now - timedelta(seconds=5))
    ExecutionFactory(status=ExecutionStatus.RUNNING, timeout_at=now + timedelta(seconds=60))
    ExecutionFactory(status=ExecutionStatus.RUNNING, timeout_at=None)
    assert sla_violations_detect().alerts == []


@pytest.mark.django_db
@pytest.mark.parametrize("status", [ExecutionStatus.PENDING_APPROVAL, ExecutionStatus.QUEUED])
def test_a_parked_execution_past_its_last_attempts_deadline_does_not_alert(status: str) -> None:
    # Parked at a gate step (pending_approval) or queued again, it keeps the timeout_at its
    # last start set; nothing enforces it (the next start sets a new one), so it is no timeout.
    now = timezone.now()
    ExecutionFactory(
        status=status, started_at=now - timedelta(minutes=5), timeout_at=now - timedelta(minutes=4)
    )
    assert sla_violations_detect().alerts == []
    assert not SlaAlert.objects.exists()


@pytest.mark.django_db
def test_queue_item_waiting_longer_than_its_sla_class_alerts_once(settings: Any) -> None:
    settings.SLA_QUEUE_WAIT_SECONDS = {"fast": 10, "medium": 30, "long": 120}
    old = timezone.now() - timedelta(seconds=20)
    late = QueueItemFactory(
        execution=ExecutionFactory(status=ExecutionStatus.QUEUED), sla_class=SlaClass.FAST, available_at=old
    )
    late.enqueued_at = old
    late.save()
    within = QueueItemFactory(
        execution=ExecutionFactory(status=ExecutionStatus.QUEUED, sla_class=SlaClass.MEDIUM),
        sla_class=SlaClass.MEDIUM,
    )
    within.enqueued_at = old
    within.available_at = old
    within.save()
    # Backing off until later: not waiting for a worker yet.
    backoff = QueueItemFactory(
        execution=ExecutionFactory(status=ExecutionStatus.QUEUED),
        available_at=timezone.now() + timedelta(seconds=30),
    )
    backoff.enqueued_at = old
    backoff.save()
    QueueItemFactory(
        execution=ExecutionFactory(status=ExecutionStatus.RUNNING), status=QueueStatus.PROCESSING
    )

    assert sla_sweep() == 1
    assert sla_sweep() == 0
    alert = SlaAlert.objects.get()
    assert (alert.kind, alert.execution_id, alert.limit_seconds) == (
        SlaAlert.Kind.QUEUE_WAIT,
        late.execution.execution_id,
        10,
    )
    assert ExecutionEvent.objects.filter(event_type="sla_violation").count() == 1

    # A new attempt that waits too long again is a new violation.
    late.attempt_count = 1
    late.save()
    assert sla_sweep() == 1


def test_sla_sweep_is_scheduled() -> None:
    assert any(job.func == "monitoring.tasks.sla_sweep" for job in SCHEDULES)


@pytest.mark.django_db(transaction=True)
def test_concurrent_sweepers_alert_once() -> None:
    executions = [_overdue() for _ in range(5)]
    barrier = threading.Barrier(4)
    counts: list[int] = []
    errors: list[BaseException] = []

    def sweep() -> None:
        try:
            barrier.wait(10)
            counts.append(len(sla_violations_detect().alerts))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()  # the thread's own connection, so teardown can drop the database

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sum(counts) == 5
    assert SlaAlert.objects.count() == 5
    for execution in executions:
        assert ExecutionEvent.objects.filter(execution=execution, event_type="sla_violation").count() == 1


@pytest.mark.django_db
def test_sla_sweep_command_prints_new_alerts() -> None:
    from io import StringIO

    from django.core.management import call_command

    execution = _overdue()
    out = StringIO()
    call_command("sla_sweep", stdout=out)
    assert str(execution.execution_id) in out.getvalue() and "1 new alert(s)" in out.getvalue()
    out = StringIO()
    call_command("sla_sweep", stdout=out)
    assert "0 new alert(s)" in out.getvalue()
