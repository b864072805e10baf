"""The cluster's wake-ups queue drain tasks for idle workers only: never more waiting in the
broker than the cluster has workers, however often it is woken (every submission wakes it)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db import connections
from django.utils import timezone
from django_q.models import OrmQ

from execution.tasks import wake_workers

pytestmark = pytest.mark.django_db(transaction=True)


def _in_broker() -> int:
    return OrmQ.objects.filter(key=settings.Q_CLUSTER["name"]).count()


def test_repeated_wake_ups_never_queue_more_drains_than_workers() -> None:
    workers = int(settings.Q_CLUSTER["workers"])
    assert wake_workers(10) == workers
    for _ in range(5):  # a burst of submissions, each waking the cluster
        assert wake_workers(10) == 0
    assert _in_broker() == workers


def test_a_pulled_task_does_not_count_as_waiting() -> None:
    """A row a worker has pulled (its lock pushed into the future, as django-q2 does) or a
    killed worker's row is not waiting: idle workers are still woken."""
    workers = int(settings.Q_CLUSTER["workers"])
    wake_workers(workers)
    OrmQ.objects.update(lock=timezone.now() + timedelta(hours=1))
    assert wake_workers(1) == 1


def test_an_idle_drain_takes_work_that_arrives_while_it_listens(
    settings: Any, tenant: Any, operator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A drain that emptied the queue listens for DRAIN_LINGER_SECONDS: an execution queued
    meanwhile (its wake-up NOTIFY) runs in the same drain, no new task needed."""
    from execution.models import Execution
    from execution.worker import runtime
    from tests.execution.engine.helpers import enqueue, make_execution

    settings.DRAIN_LINGER_SECONDS = 5.0
    monkeypatch.setattr(runtime.state, "installed", True)  # signal handlers need the main thread
    first, second = (
        make_execution(tenant=tenant, actor=operator, steps=[{"type": "noop"}], action_class="read")
        for _ in range(2)
    )
    enqueue(first)
    ran: list[int] = []

    def drain_in_a_thread() -> None:
        try:
            ran.append(runtime.drain(budget_seconds=30))
        finally:
            connections.close_all()  # this thread's connection

    drainer = threading.Thread(target=drain_in_a_thread)
    drainer.start()
    deadline = time.monotonic() + 20
    while Execution.objects.get(pk=first.pk).status != "completed" and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # the drain found the queue empty and listens now
    assert drainer.is_alive()
    enqueue(second)
    drainer.join(20)
    assert ran == [2]
    assert Execution.objects.get(pk=second.pk).status == "completed"
    assert _in_broker() == 0  # no drain task was needed
