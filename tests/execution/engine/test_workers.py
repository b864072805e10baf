"""The engine with real worker processes (``manage.py qcluster`` subprocesses)."""

from __future__ import annotations

import itertools
import os
import random
import signal
from collections import defaultdict
from pathlib import Path

import pytest

from execution.models import Execution, ExecutionEvent, ExecutionStep, QueueItem
from tests.execution.engine.helpers import child_pids, enqueue, make_execution, wait_until, worker_cluster
from tests.factories import AssetFactory, LocalAssetFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

FAST_RECOVERY = {
    "OPS_LEASE_SECONDS": "10",
    "OPS_REAPER_INTERVAL_SECONDS": "1",
    "OPS_RETRY_BACKOFF_BASE_SECONDS": "0.2",
}


def _done(executions: list[Execution]) -> bool:
    pks = [e.pk for e in executions]
    return (
        not Execution.objects.filter(pk__in=pks)
        .exclude(status__in=["completed", "failed", "cancelled", "timeout", "partial"])
        .exists()
    )


def test_200_executions_on_2_workers_run_once_and_priority_1_starts_before_earlier_priority_5(
    tenant, operator
) -> None:
    rng = random.Random(7)
    executions = []
    # The backlog is in the queue before any worker starts; p5 items are enqueued first.
    for priority in sorted((rng.choice([1, 3, 5, 7, 10]) for _ in range(200)), key=lambda p: -p):
        execution = make_execution(tenant=tenant, actor=operator, priority=priority, steps=[{"type": "noop"}])
        enqueue(execution)
        executions.append(execution)
    with worker_cluster(workers=2):
        wait_until(lambda: _done(executions), 240, interval=0.5, what="200 executions")
    assert set(
        Execution.objects.filter(pk__in=[e.pk for e in executions]).values_list("status", flat=True)
    ) == {"completed"}
    started = ExecutionEvent.objects.filter(execution__in=executions, event_type="started").order_by("id")
    per_execution = defaultdict(int)
    for event in started:
        per_execution[event.execution_id] += 1
    assert len(per_execution) == 200 and set(per_execution.values()) == {1}, "each ran exactly once"
    steps_started = ExecutionEvent.objects.filter(execution__in=executions, event_type="step_started").count()
    assert steps_started == 200
    priority_of = {e.execution_id: e.priority for e in executions}
    order = [priority_of[e.execution_id] for e in started]
    last_p1 = max(i for i, p in enumerate(order) if p == 1)
    first_p5 = min(i for i, p in enumerate(order) if p == 5)
    assert last_p1 < first_p5, "priority 1 items start before priority 5 items enqueued earlier"


def test_sigkill_of_workers_mid_step_recovers_every_execution_without_rerunning_completed_steps(
    tenant, operator, shared_dir: Path
) -> None:
    executions, files = [], []
    for n in range(20):
        path = shared_dir / f"run-{n}"
        files.append(path)
        # One local asset each: the executions run side by side, not one after the other.
        target = {"asset_id": LocalAssetFactory(tenant=tenant).pk}
        executions.append(
            make_execution(
                tenant=tenant,
                actor=operator,
                steps=[
                    {
                        "name": "A",
                        "type": "command",
                        "target": target,
                        "params": {"command": f"printf A >> {path}"},
                    },
                    {"name": "wait", "type": "sleep", "params": {"seconds": 8}},
                    {
                        "name": "C",
                        "type": "command",
                        "target": target,
                        "params": {"command": f"printf C >> {path}"},
                    },
                ],
            )
        )
    with worker_cluster(workers=20, **FAST_RECOVERY) as cluster:
        for execution in executions:
            enqueue(execution)

        def all_in_middle() -> bool:
            middle = ExecutionStep.objects.filter(execution__in=executions, step_index=1, status="running")
            leased = QueueItem.objects.filter(execution__in=executions, status="processing")
            return middle.count() == 20 and leased.count() == 20

        wait_until(all_in_middle, 120, what="20 executions in their middle step")
        # The cluster's worker processes (the sentinel's children), listed before the kill:
        # listing them takes a while on a loaded machine and the middle step only lasts 8 s.
        workers = {p for s in child_pids(cluster.pid) for p in child_pids(s)}
        # SIGKILL the django-q2 worker processes running them (their pids are in the
        # queue items' worker_id); the sentinel starts new ones, the reaper returns the
        # expired leases, and each execution resumes at its middle step.
        running = QueueItem.objects.filter(execution__in=executions, status="processing")
        pids = {int(worker.rsplit(":", 1)[1]) for worker in running.values_list("worker_id", flat=True)}
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        assert len(pids) == 20
        assert pids <= workers
        wait_until(lambda: _done(executions), 120, interval=0.5, what="recovery")
    assert set(
        Execution.objects.filter(pk__in=[e.pk for e in executions]).values_list("status", flat=True)
    ) == {"completed"}
    for path in files:
        assert path.read_text() == "AC", path
    assert ExecutionEvent.objects.filter(execution__in=executions, event_type="retry_scheduled").count() >= 20


def test_two_workers_fifty_executions_each_locking_two_of_five_assets_never_overlap(tenant, operator) -> None:
    assets = [AssetFactory(tenant=tenant) for _ in range(5)]
    rng = random.Random(11)
    executions = []
    for _ in range(50):
        pair = rng.sample(assets, 2)
        executions.append(
            make_execution(
                tenant=tenant,
                actor=operator,
                steps=[
                    {"type": "sleep", "params": {"seconds": 0.05}, "target": {"asset_id": pair[0].pk}},
                    {"type": "sleep", "params": {"seconds": 0.05}, "target": {"asset_id": pair[1].pk}},
                ],
            )
        )
    with worker_cluster(workers=2):
        for execution in executions:
            enqueue(execution)
        wait_until(lambda: _done(executions), 240, interval=0.5, what="50 executions")
    assert set(
        Execution.objects.filter(pk__in=[e.pk for e in executions]).values_list("status", flat=True)
    ) == {"completed"}
    intervals: dict[str, list[tuple[object, object, object]]] = defaultdict(list)
    opened: dict[tuple[object, str], object] = {}
    for event in ExecutionEvent.objects.filter(event_type__in=["lock_acquired", "lock_released"]).order_by(
        "id"
    ):
        for asset in event.details["assets"]:
            key = (event.execution_id, asset)
            if event.event_type == "lock_acquired":
                opened[key] = event.created_at
            else:
                intervals[asset].append((opened.pop(key), event.created_at, event.execution_id))
    assert not opened, "every lock was released"
    for asset, spans in intervals.items():
        spans.sort(key=lambda s: s[0])
        for (_start_a, end_a, ex_a), (start_b, _end_b, ex_b) in itertools.pairwise(spans):
            assert end_a <= start_b, f"asset {asset}: {ex_a} and {ex_b} overlap"
    assert sum(len(s) for s in intervals.values()) == 100
