"""Immediate mode (docs/contract.md#vocabulary): a worker runs it at the top priority while the request waits; no
step ever runs in the web process."""

from __future__ import annotations

import os
from typing import Any

import pytest
from django.utils import timezone

from execution.models import Execution, QueueItem, WorkerHeartbeat
from tests.conftest import _member
from tests.execution.api.conftest import client_for, noop_body
from tests.execution.engine.helpers import wait_until, worker_cluster

URL = "/api/v1/executions/"
pytestmark = pytest.mark.django_db(transaction=True)


def test_an_immediate_plan_runs_on_a_worker_and_is_answered_201_with_its_result(tenant: Any) -> None:
    user = _member(tenant, "inline-op", "operator")
    since = timezone.now()
    with worker_cluster(workers=1):
        wait_until(
            lambda: WorkerHeartbeat.objects.filter(last_seen_at__gte=since).exists(), 60, what="a worker"
        )
        response = client_for(user).post(URL, noop_body(estimate=1), format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["execution_mode"], data["status"], data["steps"][0]["status"]) == (
        "immediate",
        "completed",
        "completed",
    )
    execution = Execution.objects.get(execution_id=data["execution_id"])
    started = execution.events.get(event_type="started")
    assert started.actor_type == "worker"
    assert not started.details["worker"].endswith(f":{os.getpid()}"), "run by the worker, not this process"
    assert QueueItem.objects.get(execution=execution).priority == 1


def test_an_immediate_plan_no_worker_finishes_in_time_is_answered_202_and_left_queued(
    tenant: Any, settings: Any
) -> None:
    settings.IMMEDIATE_WAIT_SECONDS = 0.3
    user = _member(tenant, "inline-op", "operator")
    response = client_for(user).post(URL, noop_body(estimate=1), format="json")
    assert response.status_code == 202, response.content
    execution = Execution.objects.get(execution_id=response.json()["execution_id"])
    assert (execution.execution_mode, execution.status) == ("immediate", "queued")
    assert not execution.events.filter(event_type="started").exists(), "nothing ran in the web process"
    assert QueueItem.objects.get(execution=execution).priority == 1
