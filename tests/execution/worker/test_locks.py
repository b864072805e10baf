"""Asset locks in this process: modes, lines, parking, wake-ups (execution/worker/locks.py).

Real workers: tests/execution/engine/test_locks_workers.py."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import psycopg2
import pytest
from django.db import connection, connections
from django.utils import timezone

from execution.enums import ExecutionStatus, LockMode, QueueStatus
from execution.models import Execution, ExecutionEvent, ExecutionLock, ExecutionLockWaiter, QueueItem
from execution.services.cancel import execution_cancel
from execution.worker import lock_sql
from execution.worker.locks import (
    LockRequest,
    lock_requests,
    locks_give,
    locks_sweep,
    locks_take,
    locks_wake,
)
from execution.worker.runtime import drain
from tests.execution.engine.helpers import drain_until_done, enqueue, event_types, make_execution
from tests.factories import AssetFactory

pytestmark = pytest.mark.django_db(transaction=True)

SHARED, EXCLUSIVE = LockMode.SHARED, LockMode.EXCLUSIVE


def _holder(tenant: Any, operator: Any, asset: Any, mode: str = EXCLUSIVE) -> Execution:
    """An execution that holds ``asset`` (taken as a worker elsewhere would)."""
    execution = make_execution(tenant=tenant, actor=operator, steps=[{"type": "noop"}])
    busy = locks_take(
        tenant_id=tenant.pk,
        execution_id=execution.execution_id,
        owner=f"execution:{execution.execution_id}:worker:elsewhere",
        requests=[LockRequest(str(asset.pk), mode)],
    )
    assert busy is None
    return execution


def _waiter(
    tenant: Any, operator: Any, asset: Any, action_class: str = "modify", priority: int = 5
) -> Execution:
    execution = make_execution(
        tenant=tenant,
        actor=operator,
        priority=priority,
        steps=[{"type": "noop", "target": {"asset_id": asset.pk}, "action_class": action_class}],
    )
    enqueue(execution)
    return execution


def _parked(execution: Execution) -> bool:
    item = QueueItem.objects.get(execution=execution)
    return item.status == QueueStatus.PENDING and item.available_at > timezone.now() + timezone.timedelta(
        days=1
    )


def test_lock_requests_take_the_strongest_mode_per_asset_in_lock_order() -> None:
    requests = lock_requests([("10", "read"), ("9", "read"), ("10", "modify"), ("", "deploy"), ("9", "read")])
    assert requests == [LockRequest("9", SHARED), LockRequest("10", EXCLUSIVE)]


def test_readers_share_a_writer_excludes_and_the_holder_of_record_passes_on(tenant, operator) -> None:
    asset = AssetFactory(tenant=tenant)
    first = _holder(tenant, operator, asset, SHARED)
    second = _holder(tenant, operator, asset, SHARED)
    row = ExecutionLock.objects.get(tenant=tenant, asset_id=str(asset.pk))
    assert row.mode == SHARED and set(row.holders) == {first.execution_id, second.execution_id}
    assert row.execution_id == first.execution_id  # the holder of record

    writer = make_execution(tenant=tenant, actor=operator, steps=[{"type": "noop"}])
    take = {
        "tenant_id": tenant.pk,
        "execution_id": writer.execution_id,
        "owner": "w",
        "requests": [LockRequest(str(asset.pk), EXCLUSIVE)],
    }
    busy = locks_take(**take)
    assert busy is not None and busy.holders == 2 and busy.holder_mode == SHARED
    assert busy.holder_execution_id == str(first.execution_id)

    assert locks_give(execution=first, assets=[str(asset.pk)]) == [str(asset.pk)]
    row.refresh_from_db()
    assert row.is_active and row.holders == [second.execution_id]
    assert row.execution_id == second.execution_id, "the next reader becomes the holder of record"
    assert locks_take(**take) is not None, "one reader left still excludes the writer"

    locks_give(execution=second, assets=[str(asset.pk)])
    assert locks_take(**take) is None
    row.refresh_from_db()
    assert row.mode == EXCLUSIVE and row.holders == [writer.execution_id]


def test_a_take_is_all_or_nothing(tenant, operator) -> None:
    a, b = AssetFactory(tenant=tenant), AssetFactory(tenant=tenant)
    _holder(tenant, operator, b)
    other = make_execution(tenant=tenant, actor=operator, steps=[{"type": "noop"}])
    busy = locks_take(
        tenant_id=tenant.pk,
        execution_id=other.execution_id,
        owner="o",
        requests=[LockRequest(str(a.pk), EXCLUSIVE), LockRequest(str(b.pk), EXCLUSIVE)],
    )
    assert busy is not None and busy.asset_id == str(b.pk)
    assert not ExecutionLock.objects.filter(asset_id=str(a.pk), is_active=True).exists()


def test_a_busy_asset_parks_the_execution_and_the_release_wakes_it(tenant, operator, settings) -> None:
    settings.LOCK_SWEEP_SECONDS = 3600  # only the release may wake it
    asset = AssetFactory(tenant=tenant)
    holder = _holder(tenant, operator, asset)
    waiter = _waiter(tenant, operator, asset)
    drain(budget_seconds=0.5)
    waiter.refresh_from_db()
    assert waiter.status == ExecutionStatus.QUEUED
    item = QueueItem.objects.get(execution=waiter)
    assert item.attempt_count == 0, "waiting is not a failed attempt"
    assert _parked(waiter), "parked: not claimable, holds no worker"
    wait = ExecutionEvent.objects.get(execution=waiter, event_type="lock_wait")
    assert wait.details["holder_execution_id"] == str(holder.execution_id)
    assert str(holder.execution_id) in wait.details["reason"]
    assert ExecutionLockWaiter.objects.filter(execution=waiter, asset_id=str(asset.pk)).exists()
    drain(budget_seconds=0.3)
    assert ExecutionEvent.objects.filter(execution=waiter, event_type="lock_wait").count() == 1, (
        "a parked execution is not claimed again until woken"
    )

    locks_give(execution=holder, assets=[str(asset.pk)])
    assert not _parked(waiter), "the release made it claimable"
    waiter = drain_until_done(waiter)
    assert waiter.status == ExecutionStatus.COMPLETED
    assert not ExecutionLockWaiter.objects.filter(execution=waiter).exists()


def test_a_waiting_writer_blocks_later_readers(tenant, operator) -> None:
    asset = AssetFactory(tenant=tenant)
    reader = _holder(tenant, operator, asset, SHARED)
    writer = _waiter(tenant, operator, asset, "modify")
    drain(budget_seconds=0.3)
    assert _parked(writer)
    late = make_execution(tenant=tenant, actor=operator, steps=[{"type": "noop"}])
    busy = locks_take(
        tenant_id=tenant.pk,
        execution_id=late.execution_id,
        owner="late",
        requests=[LockRequest(str(asset.pk), SHARED)],
    )
    assert busy is not None and busy.ahead_execution_id == str(writer.execution_id)
    assert "waits ahead" in busy.describe()

    locks_give(execution=reader, assets=[str(asset.pk)])
    writer = drain_until_done(writer)
    assert writer.status == ExecutionStatus.COMPLETED


def test_a_release_wakes_the_first_in_line_and_the_readers_before_the_next_writer(tenant, operator) -> None:
    asset = AssetFactory(tenant=tenant)
    holder = _holder(tenant, operator, asset)
    line = [
        _waiter(tenant, operator, asset, "read"),
        _waiter(tenant, operator, asset, "read"),
        _waiter(tenant, operator, asset, "modify"),
        _waiter(tenant, operator, asset, "read"),
    ]
    drain(budget_seconds=0.5)
    assert all(_parked(e) for e in line)
    locks_give(execution=holder, assets=[str(asset.pk)])
    assert [_parked(e) for e in line] == [False, False, True, True]


def test_first_come_within_priority_and_a_better_priority_goes_first(tenant, operator) -> None:
    asset = AssetFactory(tenant=tenant)
    holder = _holder(tenant, operator, asset)
    early = _waiter(tenant, operator, asset)
    late = _waiter(tenant, operator, asset)
    urgent = _waiter(tenant, operator, asset, priority=1)
    drain(budget_seconds=0.5)
    assert all(_parked(e) for e in (early, late, urgent))
    locks_give(execution=holder, assets=[str(asset.pk)])
    assert [_parked(e) for e in (urgent, early, late)] == [False, True, True]
    drain_until_done(late)  # each release wakes the next in line
    order = list(
        ExecutionEvent.objects.filter(event_type="started", execution__in=[early, late, urgent])
        .order_by("id")
        .values_list("execution_id", flat=True)
    )
    assert order == [urgent.execution_id, early.execution_id, late.execution_id]


def test_a_cancelled_waiter_leaves_the_line_and_the_next_one_is_woken(tenant, operator) -> None:
    asset = AssetFactory(tenant=tenant)
    _holder(tenant, operator, asset)
    first = _waiter(tenant, operator, asset)
    second = _waiter(tenant, operator, asset)
    drain(budget_seconds=0.5)
    ExecutionLock.objects.filter(asset_id=str(asset.pk)).update(is_active=False, holders=[])
    locks_wake(lines=[(tenant.pk, str(asset.pk))])
    assert [_parked(e) for e in (first, second)] == [False, True]
    execution_cancel(execution=first)
    assert not ExecutionLockWaiter.objects.filter(execution=first).exists()
    assert not _parked(second), "the cancel of the head woke the next in line"


def test_lock_wait_past_the_limit_fails_naming_the_holder(tenant, operator, settings) -> None:
    settings.LOCK_WAIT_LIMIT_SECONDS = 0.3
    asset = AssetFactory(tenant=tenant)
    holder = _holder(tenant, operator, asset)
    waiter = _waiter(tenant, operator, asset)
    drain(budget_seconds=0.3)
    assert _parked(waiter)
    time.sleep(0.4)
    assert locks_sweep()["overdue"] == 1  # the sweep hands it to a worker, which fails it
    waiter = drain_until_done(waiter, timeout=30)
    assert waiter.status == ExecutionStatus.FAILED
    assert str(holder.execution_id) in waiter.error_message
    # It never started: queued -> failed, no started event, no run time.
    assert waiter.previous_status == ExecutionStatus.QUEUED and waiter.started_at is None
    assert "started" not in event_types(waiter)
    assert not ExecutionLockWaiter.objects.filter(execution=waiter).exists()


def test_a_park_that_commits_while_the_release_runs_is_still_woken(tenant, operator) -> None:
    """The lost wake-up: the release's snapshot predates the park, which held the lock row
    when the release began; the release sees the row's version change and wakes again."""
    asset = AssetFactory(tenant=tenant)
    holder = _holder(tenant, operator, asset)
    waiter = _waiter(tenant, operator, asset)
    item = QueueItem.objects.get(execution=waiter)
    token = "6f0b7c1e-0000-4000-8000-000000000001"
    QueueItem.objects.filter(pk=item.pk).update(
        status="processing",
        lease_token=token,
        lease_expires_at=timezone.now() + timezone.timedelta(seconds=30),
    )
    other = psycopg2.connect(
        **{k: v for k, v in connection.get_connection_params().items() if k != "cursor_factory"}
    )
    try:
        cur = other.cursor()  # a transaction: the park holds the lock row until it commits
        cur.execute(
            lock_sql.TAKE_SQL,
            {
                "item": item.pk,
                "token": token,
                "tenant": tenant.pk,
                "requests": json.dumps([{"asset_id": str(asset.pk), "mode": EXCLUSIVE}]),
                "execution": str(waiter.execution_id),
                "owner": "o",
                "priority": 5,
                "ttl": 30,
                "wait_limit": 300,
                "channel": "x",
                "notify": False,
            },
        )
        assert cur.fetchone()[11] is True, "parked: the holder still holds it"
        released: list[str] = []

        def release() -> None:
            try:
                released.extend(locks_give(execution=holder, assets=[str(asset.pk)]))
            finally:
                connections.close_all()

        thread = threading.Thread(target=release)
        thread.start()
        time.sleep(0.5)  # the release took its snapshot and waits for the lock row
        assert thread.is_alive()
        other.commit()
        thread.join(10)
    finally:
        other.close()
    assert released == [str(asset.pk)]
    assert not _parked(waiter), "woken although its park was invisible to the release's snapshot"


def test_step_scope_holds_each_steps_target_only_while_it_runs(tenant, operator) -> None:
    a, b = AssetFactory(tenant=tenant), AssetFactory(tenant=tenant)
    execution = make_execution(
        tenant=tenant,
        actor=operator,
        lock_scope="step",
        steps=[
            {"type": "noop", "target": {"asset_id": a.pk}},
            {"type": "noop", "target": {"asset_id": b.pk}},
        ],
    )
    enqueue(execution)
    execution = drain_until_done(execution)
    assert execution.status == ExecutionStatus.COMPLETED
    locks = [
        (e.event_type, e.details["assets"])
        for e in ExecutionEvent.objects.filter(execution=execution, event_type__startswith="lock_").order_by(
            "id"
        )
    ]
    assert locks == [
        ("lock_acquired", [str(a.pk)]),
        ("lock_released", [str(a.pk)]),
        ("lock_acquired", [str(b.pk)]),
        ("lock_released", [str(b.pk)]),
    ]


def test_step_scope_waits_for_the_next_steps_lock_in_the_queue_and_resumes_there(
    tenant, operator, settings
) -> None:
    settings.LOCK_SWEEP_SECONDS = 3600
    a, b = AssetFactory(tenant=tenant), AssetFactory(tenant=tenant)
    holder = _holder(tenant, operator, b)
    execution = make_execution(
        tenant=tenant,
        actor=operator,
        lock_scope="step",
        steps=[
            {"type": "noop", "target": {"asset_id": a.pk}},
            {"type": "noop", "target": {"asset_id": b.pk}},
        ],
    )
    enqueue(execution)
    drain(budget_seconds=0.5)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.QUEUED and _parked(execution)
    assert not ExecutionLock.objects.filter(asset_id=str(a.pk), is_active=True).exists(), (
        "nothing is held while waiting for the next step's lock"
    )
    assert QueueItem.objects.get(execution=execution).attempt_count == 0
    locks_give(execution=holder, assets=[str(b.pk)])
    execution = drain_until_done(execution)
    assert execution.status == ExecutionStatus.COMPLETED
    started = list(
        ExecutionEvent.objects.filter(execution=execution, event_type="step_started")
        .order_by("id")
        .values_list("step_index", flat=True)
    )
    assert started == [0, 1], "the first step ran once; the run resumed at the second"
