"""Workers are alive when idle (docs/contract.md#truth): real ``manage.py qcluster`` processes
with nothing queued stay alive on /monitoring/, in ``opsconductor_workers_alive`` and in
/readyz's worker check, all counted by heartbeat age through one selector; a cluster that is
gone reads as lost once its heartbeat is older than the age."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest
from django.test import Client

from execution.enums import ExecutionStatus
from execution.models import Execution, WorkerHeartbeat
from monitoring.services.readiness import check_workers
from tests.execution.engine.helpers import enqueue, make_execution, wait_until, worker_cluster
from tests.monitoring.test_metrics import scrape, value

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

AGE_SECONDS = 8  # above the cluster's heartbeat interval (5 s)


def _states(client: Client) -> dict[str, str]:
    rows = client.get("/monitoring/").context["workers"]
    return {r["worker"].worker_id: r["state"] for r in rows}


def test_idle_workers_stay_alive_and_a_killed_cluster_is_lost_after_the_age(
    client: Client, tenant: Any, operator: Any, settings: Any
) -> None:
    settings.MONITORING_WORKER_STALE_SECONDS = AGE_SECONDS
    client.force_login(operator)
    # A step longer than the watcher's poll: the worker process writes its own row.
    step = {"type": "sleep", "params": {"seconds": 1}}
    execution = make_execution(tenant=tenant, actor=operator, steps=[step], action_class="read")
    with worker_cluster(workers=2) as cluster:
        enqueue(execution)  # one run, so a worker process has a row of its own
        wait_until(
            lambda: Execution.objects.get(pk=execution.pk).status == ExecutionStatus.COMPLETED,
            90,
            what="the execution",
        )
        wait_until(
            lambda: (
                WorkerHeartbeat.objects.filter(pid__isnull=False, current_execution_id__isnull=True)
                .exclude(worker_id__startswith="cluster:")
                .exists()
            ),
            30,
            what="the worker process's row, idle",
        )
        # Nothing queued for longer than the age: every row is still alive.
        time.sleep(AGE_SECONDS + 4)
        states = _states(client)
        assert len(states) >= 2 and set(states.values()) == {"alive"}, states
        assert value(scrape(client), "opsconductor_workers_alive") == 1  # one cluster
        check = check_workers()
        assert check.ok and "1 worker cluster(s)" in check.detail, check

        os.killpg(cluster.pid, signal.SIGKILL)  # the machine is gone: nobody says "stopped"
        cluster.wait(10)
        wait_until(lambda: set(_states(client).values()) == {"lost"}, AGE_SECONDS + 10, what="every row lost")
        assert value(scrape(client), "opsconductor_workers_alive") == 0
        assert not check_workers().ok
