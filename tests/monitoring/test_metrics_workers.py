"""/metrics after executions run by two real ``qcluster`` processes (the engine's workers).

Skipped when the engine's queue (``execution.services.queue.queue_enqueue``) is absent;
test_metrics.py also drives two producer processes straight through transition().
"""

from __future__ import annotations

import subprocess
import time
from datetime import timedelta
from typing import Any

import pytest
from django.db.models import Count
from django.test import Client

from execution.enums import FINISHED_STATUSES, ExecutionStatus
from execution.models import Execution, ExecutionStep, WorkerHeartbeat
from monitoring.selectors.summary import metrics_summary
from tests.factories import ExecutionFactory, ExecutionStepFactory
from tests.monitoring.test_metrics import scrape, value
from tests.support.processes import manage_argv, stop_process, subprocess_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
RUNS = 12


def _noop_execution(tenant: Any, actor: Any, index: int) -> Any:
    plan = {
        "name": f"noop {index}",
        "environment": "dev",
        "steps": [{"name": "nothing", "type": "noop", "params": {}}],
    }
    execution = ExecutionFactory(
        tenant=tenant, actor=actor, plan_snapshot=plan, status=ExecutionStatus.APPROVED
    )
    ExecutionStepFactory(execution=execution, step_index=0, step_name="nothing", step_type="noop")
    return execution


def test_counts_match_the_database_after_two_worker_clusters(
    client: Client, policies: None, tenant: Any, operator: Any
) -> None:
    from execution.services.queue import queue_enqueue

    for i in range(RUNS):
        queue_enqueue(execution=_noop_execution(tenant, operator, i))
    workers = [
        subprocess.Popen(
            manage_argv("qcluster"),
            env=subprocess_env(OPS_WORKERS="1", OPS_Q_CLUSTER_NAME="opsconductor"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if Execution.objects.exclude(status__in=list(FINISHED_STATUSES)).count() == 0:
                break
            time.sleep(1)
        assert Execution.objects.exclude(status__in=list(FINISHED_STATUSES)).count() == 0
        samples = scrape(client)
    finally:
        for proc in workers:
            stop_process(proc, timeout=60)

    db_counts = {
        row["status"]: row["n"] for row in Execution.objects.values("status").annotate(n=Count("id"))
    }
    exported = {
        s.labels["status"]: int(s.value)
        for name in ("opsconductor_executions", "opsconductor_executions_finished_total")
        for s in samples[name]
        if s.labels["tenant"] == "acme" and s.value
    }
    assert exported == db_counts == {"completed": RUNS}
    steps = ExecutionStep.objects.filter(step_type="noop", completed_at__isnull=False).count()
    assert steps == RUNS
    assert value(samples, "opsconductor_step_duration_seconds_count", step_type="noop") == steps
    ran = Execution.objects.filter(started_at__isnull=False).count()
    assert value(samples, "opsconductor_execution_duration_seconds_count", sla_class="fast") == ran == RUNS
    assert value(samples, "opsconductor_queue_depth", sla_class="fast", state="pending") == 0
    # The workers' own statements fed the rollups: every claim ended, every run timed.
    summary = metrics_summary(window=timedelta(hours=1), tenant_ids=None)
    assert summary["queue_time_seconds"]["count"] == RUNS
    assert summary["duration_seconds"]["count"] == summary["executions"]["by_status"]["completed"] == RUNS
    # Both clusters heartbeated while they ran (their rows are marked stopped now).
    assert WorkerHeartbeat.objects.filter(stopped_at__isnull=False).count() == 2
