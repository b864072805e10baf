"""Asset locks on real worker processes (``manage.py qcluster``): readers share, writers
exclude, a release wakes the next in line, no deadlock whatever order plans lock in."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from execution.enums import FINISHED_STATUSES
from execution.models import Execution, ExecutionEvent, QueueItem
from tests.execution.engine.helpers import (
    Span,
    enqueue,
    lock_spans,
    make_execution,
    wait_until,
    worker_cluster,
)
from tests.factories import AssetFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _done(executions: list[Execution]) -> bool:
    pks = [e.pk for e in executions]
    return not Execution.objects.filter(pk__in=pks).exclude(status__in=FINISHED_STATUSES).exists()


def _overlap(a: Span, b: Span) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_readers_share_and_writers_exclude(tenant: Any, operator: Any) -> None:
    asset = AssetFactory(tenant=tenant)
    target = {"asset_id": asset.pk}
    plan = [("read", 1.5), ("read", 1.5), ("modify", 0.5), ("read", 1.5), ("read", 1.5), ("modify", 0.5)]
    executions = [
        make_execution(
            tenant=tenant,
            actor=operator,
            steps=[{"type": "sleep", "params": {"seconds": seconds}, "target": target, "action_class": cls}],
        )
        for cls, seconds in plan
    ]
    with worker_cluster(workers=4):
        for execution in executions:
            enqueue(execution)
        wait_until(lambda: _done(executions), 180, interval=0.5, what="6 executions")
    statuses = set(
        Execution.objects.filter(pk__in=[e.pk for e in executions]).values_list("status", flat=True)
    )
    assert statuses == {"completed"}, statuses
    spans = lock_spans(executions)[str(asset.pk)]
    assert len(spans) == 6
    readers = [s for s in spans if s[3] == "shared"]
    writers = [s for s in spans if s[3] == "exclusive"]
    assert len(readers) == 4 and len(writers) == 2
    assert any(_overlap(a, b) for a, b in itertools.combinations(readers, 2)), "readers held it together"
    for writer in writers:
        others = [s for s in spans if s is not writer]
        assert not any(_overlap(writer, other) for other in others), f"a writer overlapped: {writer}"
    # Waiting took no attempt: every item was claimed for a counted attempt exactly once.
    assert set(
        QueueItem.objects.filter(execution__in=executions).values_list("attempt_count", flat=True)
    ) == {1}


def test_a_waiter_starts_within_a_second_of_the_release_woken_by_it(tenant: Any, operator: Any) -> None:
    """Woken by the release, not by a delay: the backstop sweep (and the blind retry delay of
    the engine before) is set to two minutes."""
    asset = AssetFactory(tenant=tenant)
    target = {"asset_id": asset.pk}
    holder = make_execution(
        tenant=tenant, actor=operator, steps=[{"type": "sleep", "params": {"seconds": 3}, "target": target}]
    )
    waiter = make_execution(tenant=tenant, actor=operator, steps=[{"type": "noop", "target": target}])
    with worker_cluster(workers=2, OPS_LOCK_SWEEP_SECONDS="120", OPS_LOCK_RETRY_SECONDS="120"):
        enqueue(holder)
        wait_until(
            lambda: ExecutionEvent.objects.filter(execution=holder, event_type="lock_acquired").exists(),
            60,
            what="the holder to take the lock",
        )
        enqueue(waiter)
        wait_until(
            lambda: ExecutionEvent.objects.filter(execution=waiter, event_type="lock_wait").exists(),
            30,
            what="the waiter to wait",
        )
        wait_until(lambda: _done([holder, waiter]), 60, what="both to finish")
    waiter.refresh_from_db()
    assert waiter.status == "completed"
    released = ExecutionEvent.objects.get(execution=holder, event_type="lock_released").created_at
    started = ExecutionEvent.objects.get(execution=waiter, event_type="started").created_at
    assert 0 <= (started - released).total_seconds() < 1.0, (released, started)
    waits = ExecutionEvent.objects.filter(execution=waiter, event_type="lock_wait")
    assert waits.count() == 1 and waits[0].details["holder_execution_id"] == str(holder.execution_id)
    assert QueueItem.objects.get(execution=waiter).attempt_count == 1


@pytest.mark.parametrize("scope", ["execution", "step"])
def test_opposite_lock_orders_never_deadlock_in_100_rounds(tenant: Any, operator: Any, scope: str) -> None:
    """Two executions lock the same two assets in opposite orders, 100 rounds: every one
    completes, no two hold an asset at once, and waiting never cost an attempt."""
    a, b = AssetFactory(tenant=tenant), AssetFactory(tenant=tenant)

    def plan(first: Any, second: Any) -> list[dict[str, Any]]:
        return [
            {"type": "sleep", "params": {"seconds": 0.02}, "target": {"asset_id": first.pk}},
            {"type": "sleep", "params": {"seconds": 0.02}, "target": {"asset_id": second.pk}},
        ]

    executions: list[Execution] = []
    with worker_cluster(workers=4):
        for _ in range(100):
            pair = [
                make_execution(tenant=tenant, actor=operator, lock_scope=scope, steps=plan(a, b)),
                make_execution(tenant=tenant, actor=operator, lock_scope=scope, steps=plan(b, a)),
            ]
            for execution in pair:
                enqueue(execution)
            executions += pair
            wait_until(lambda p=pair: _done(p), 60, interval=0.05, what="a round")  # type: ignore[misc]
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
