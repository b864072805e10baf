"""A fleet step in ``step`` lock scope on real worker processes (docs/fleet.md "Locks"): each
target takes its own lock as it starts and gives it back as it ends; a target whose asset is
held elsewhere is put aside without holding up the others and starts when the release wakes it.

The targets run ``sleep`` (no target is contacted: only its lock matters here).
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest
from django.db import connection

from execution.enums import FINISHED_STATUSES, ExecutionStatus, TargetStatus
from execution.models import Execution, ExecutionEvent, ExecutionStep, QueueItem, StepTarget
from execution.plans.targets import step_targets_create
from execution.services.cancel import execution_cancel
from tests.execution.engine.helpers import enqueue, lock_spans, make_execution, wait_until, worker_cluster
from tests.factories import AssetFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# The backstops (a sweep of the lines; a fleet's look at its targets aside) at two minutes:
# what starts a target here within a second is the release's notification.
NO_BACKSTOP = {"OPS_LOCK_SWEEP_SECONDS": "120"}


def fleet_execution(
    *, tenant: Any, actor: Any, assets: list[Any], seconds: float, concurrency: int, scope: str = "step"
) -> Execution:
    """One ``sleep`` fleet step over ``assets`` in the order given (as the submission would
    store it: the concrete list, the full strategy, the target rows, the first target on the
    step row)."""
    step = {
        "name": "fleet",
        "type": "sleep",
        "params": {"seconds": seconds},
        "targets": [{"asset_id": str(a.pk), "hostname": a.hostname} for a in assets],
        "strategy": {"concurrency": concurrency, "batch": "100%", "max_failures": 0, "pause_seconds": 0},
        "action_class": "modify",
        "max_retries": 0,
    }
    execution = make_execution(tenant=tenant, actor=actor, sla_class="long", lock_scope=scope, steps=[step])
    rows = list(ExecutionStep.objects.filter(execution=execution).order_by("step_index"))
    ExecutionStep.objects.filter(pk=rows[0].pk).update(target_asset_id=str(assets[0].pk))
    step_targets_create(execution=execution, plan=execution.plan_snapshot, steps=rows)
    return execution


def rows_of(execution: Execution) -> list[StepTarget]:
    return list(StepTarget.objects.filter(execution_id=execution.execution_id).order_by("target_index"))


def finished(*executions: Execution) -> bool:
    pks = [e.pk for e in executions]
    return not Execution.objects.filter(pk__in=pks).exclude(status__in=FINISHED_STATUSES).exists()


def test_a_busy_target_waits_aside_while_the_others_complete_and_starts_on_the_release(
    tenant: Any, operator: Any
) -> None:
    assets = [AssetFactory(tenant=tenant) for _ in range(5)]
    busy = assets[2]
    holder = make_execution(  # long: its step may hold the lock for two minutes
        tenant=tenant,
        actor=operator,
        sla_class="long",
        steps=[{"type": "sleep", "params": {"seconds": 600}, "target": {"asset_id": busy.pk}}],
    )
    fleet = fleet_execution(tenant=tenant, actor=operator, assets=assets, seconds=0.3, concurrency=5)
    with worker_cluster(workers=2, **NO_BACKSTOP):
        enqueue(holder)
        wait_until(
            lambda: ExecutionEvent.objects.filter(execution=holder, event_type="lock_acquired").exists(),
            60,
            what="the holder to take the lock",
        )
        enqueue(fleet)

        def others_done() -> bool:
            rows = rows_of(fleet)
            return all(r.status == TargetStatus.COMPLETED for i, r in enumerate(rows) if i != 2)

        wait_until(others_done, 60, what="the four free targets to complete")
        waiting = rows_of(fleet)[2]
        assert waiting.status == TargetStatus.WAITING, waiting
        assert str(holder.execution_id) in waiting.error
        assert Execution.objects.get(pk=fleet.pk).status == ExecutionStatus.RUNNING
        execution_cancel(execution=Execution.objects.get(pk=holder.pk), actor=operator)
        wait_until(lambda: finished(holder, fleet), 60, what="both to finish")
    fleet.refresh_from_db()
    assert fleet.status == ExecutionStatus.COMPLETED, fleet.error_message
    rows = rows_of(fleet)
    assert {r.status for r in rows} == {TargetStatus.COMPLETED}
    assert rows[2].error == "" and rows[2].attempts == 1
    released = ExecutionEvent.objects.get(execution=holder, event_type="lock_released").created_at
    assert all(r.completed_at < released for i, r in enumerate(rows) if i != 2)
    assert rows[2].started_at is not None
    assert 0 <= (rows[2].started_at - released).total_seconds() < 1.0, (released, rows[2].started_at)
    aside = ExecutionEvent.objects.filter(execution=fleet, event_type="target_waiting")
    assert aside.count() == 1
    assert aside[0].details["asset_id"] == str(busy.pk)
    assert aside[0].details["holder_execution_id"] == str(holder.execution_id)
    assert QueueItem.objects.get(execution=fleet).attempt_count == 1


def test_lock_rows_show_only_the_running_targets_locks(tenant: Any, operator: Any) -> None:
    assets = [AssetFactory(tenant=tenant) for _ in range(6)]
    fleet = fleet_execution(tenant=tenant, actor=operator, assets=assets, seconds=0.6, concurrency=2)
    samples: list[tuple[set[str], set[str]]] = []
    with worker_cluster(workers=1):
        enqueue(fleet)
        deadline = time.monotonic() + 90
        while not finished(fleet) and time.monotonic() < deadline:
            with connection.cursor() as cur:
                # One statement, one snapshot: the locks it holds and its running targets.
                cur.execute(
                    "SELECT (SELECT coalesce(array_agg(asset_id), '{}') FROM execution_locks"
                    "        WHERE is_active AND %(x)s::uuid = ANY(holders)),"
                    "       (SELECT coalesce(array_agg(asset_id), '{}') FROM execution_step_targets"
                    "        WHERE execution_id = %(x)s::uuid AND status = 'running')",
                    {"x": str(fleet.execution_id)},
                )
                held, running = cur.fetchone()
            samples.append((set(held), set(running)))
            time.sleep(0.02)
    fleet.refresh_from_db()
    assert fleet.status == ExecutionStatus.COMPLETED, fleet.error_message
    busy = [s for s in samples if s[0]]
    assert busy, "no sample saw a lock held"
    for held, running in busy:
        assert held <= running, f"locks {sorted(held)} held while only {sorted(running)} run"
        assert len(held) <= 2
    assert len(set().union(*(h for h, _ in busy))) >= 3  # the holds moved on from target to target
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM execution_locks WHERE is_active AND %s::uuid = ANY(holders)",
            [str(fleet.execution_id)],
        )
        assert cur.fetchone()[0] == 0


def test_two_fleets_over_the_same_hosts_in_opposite_orders_both_finish_in_20_rounds(
    tenant: Any, operator: Any
) -> None:
    hosts = [AssetFactory(tenant=tenant) for _ in range(3)]
    executions: list[Execution] = []
    with worker_cluster(workers=2):
        for _ in range(20):
            pair = [
                fleet_execution(tenant=tenant, actor=operator, assets=hosts, seconds=0.05, concurrency=1),
                fleet_execution(
                    tenant=tenant, actor=operator, assets=hosts[::-1], seconds=0.05, concurrency=1
                ),
            ]
            for execution in pair:
                enqueue(execution)
            executions += pair
            wait_until(lambda p=pair: finished(*p), 60, interval=0.05, what="a round")  # type: ignore[misc]
    assert set(
        Execution.objects.filter(pk__in=[e.pk for e in executions]).values_list("status", flat=True)
    ) == {"completed"}
    assert set(
        QueueItem.objects.filter(execution__in=executions).values_list("attempt_count", flat=True)
    ) == {1}
    for asset, spans in lock_spans(executions).items():
        spans.sort()
        for first, second in itertools.pairwise(spans):
            assert first[1] <= second[0], f"asset {asset}: {first[2]} and {second[2]} overlap"
