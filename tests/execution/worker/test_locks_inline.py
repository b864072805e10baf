"""Asset locks of a plan whose steps run inline (noop): taken and given in the statement that
records the attempt (execution/worker/store.py ``INLINE_LOCKED_SQL``), or the attempt parked
by it. Deterministic statement counts, never timings."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg2
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from execution.enums import ExecutionStatus, LockMode, QueueStatus
from execution.models import Execution, ExecutionEvent, ExecutionLock, ExecutionLockWaiter, QueueItem
from execution.services.cancel import execution_cancel
from execution.worker import claim, store
from execution.worker.attempt import attempt_run
from execution.worker.locks import LockRequest, locks_give, locks_take
from tests.execution.engine.helpers import enqueue, make_execution
from tests.factories import AssetFactory

pytestmark = pytest.mark.django_db(transaction=True)

SHARED, EXCLUSIVE = LockMode.SHARED, LockMode.EXCLUSIVE


def _noop_on(tenant: Any, operator: Any, asset: Any, action_class: str) -> Execution:
    execution = make_execution(
        tenant=tenant,
        actor=operator,
        steps=[{"type": "noop", "target": {"asset_id": asset.pk}, "action_class": action_class}],
        action_class=action_class,
    )
    enqueue(execution)
    return execution


def _holder(tenant: Any, operator: Any, asset: Any, mode: str) -> Execution:
    execution = make_execution(tenant=tenant, actor=operator, steps=[{"type": "noop"}])
    assert (
        locks_take(
            tenant_id=tenant.pk,
            execution_id=execution.execution_id,
            owner="execution:holder:worker:elsewhere",
            requests=[LockRequest(str(asset.pk), mode)],
        )
        is None
    )
    return execution


def _worker_path(execution: Execution) -> tuple[str, int]:
    with CaptureQueriesContext(connection) as queries:
        ctx = claim.claim_with_context(worker_id="budget")
        assert ctx is not None and ctx.pk == execution.pk
        outcome = attempt_run(ctx=ctx, worker_id="budget")
    return outcome, len(queries)


def _types(execution: Execution) -> list[str]:
    return list(
        ExecutionEvent.objects.filter(execution=execution).order_by("id").values_list("event_type", flat=True)
    )


def _parked(execution: Execution) -> bool:
    item = QueueItem.objects.get(execution=execution)
    return item.status == QueueStatus.PENDING and item.available_at > timezone.now() + timezone.timedelta(
        days=1
    )


@pytest.mark.parametrize("action_class", ["modify", "read"])
def test_a_noop_on_an_asset_costs_the_2_round_trips_of_a_noop_without_one(
    tenant: Any, operator: Any, action_class: str
) -> None:
    """Claim, then one statement: the lock taken and given around the recorded attempt (it
    was claim, take, start, finish: 4)."""
    asset = AssetFactory(tenant=tenant)
    first = _noop_on(tenant, operator, asset, action_class)
    assert _worker_path(first)[0] == ExecutionStatus.COMPLETED  # creates the lock row
    execution = _noop_on(tenant, operator, asset, action_class)
    outcome, round_trips = _worker_path(execution)
    assert outcome == ExecutionStatus.COMPLETED
    assert round_trips <= 2, round_trips
    assert _types(execution)[2:] == [
        "lock_acquired",
        "started",
        "step_started",
        "step_completed",
        "lock_released",
        "completed",
    ]
    acquired = ExecutionEvent.objects.get(execution=execution, event_type="lock_acquired")
    mode = SHARED if action_class == "read" else EXCLUSIVE
    assert acquired.details["assets"] == [str(asset.pk)] and acquired.details["modes"] == {
        str(asset.pk): mode
    }
    row = ExecutionLock.objects.get(tenant=tenant, asset_id=str(asset.pk))
    assert not row.is_active and row.holders == [], "held only inside the statement"
    assert QueueItem.objects.get(execution=execution).status == QueueStatus.COMPLETED
    execution.refresh_from_db()
    assert (
        execution.status == ExecutionStatus.COMPLETED and execution.previous_status == ExecutionStatus.RUNNING
    )


def test_a_reader_goes_inline_beside_a_reader_that_holds_the_asset(tenant: Any, operator: Any) -> None:
    asset = AssetFactory(tenant=tenant)
    holder = _holder(tenant, operator, asset, SHARED)
    reader = _noop_on(tenant, operator, asset, "read")
    outcome, round_trips = _worker_path(reader)
    assert outcome == ExecutionStatus.COMPLETED and round_trips <= 2, round_trips
    row = ExecutionLock.objects.get(tenant=tenant, asset_id=str(asset.pk))
    assert row.is_active and row.holders == [holder.execution_id], "the holder keeps it, alone"


@pytest.mark.parametrize(
    ("holder_mode", "action_class", "round_trips_at_most"),
    [
        (SHARED, "modify", 2),  # a writer's statement parks itself
        # The readers' statement never parks: busy, it writes nothing and the statement that
        # parks judges again (one round trip more, only when the asset is busy).
        (EXCLUSIVE, "read", 3),
    ],
)
def test_a_busy_asset_parks_the_inline_attempt(
    tenant: Any, operator: Any, holder_mode: str, action_class: str, round_trips_at_most: int
) -> None:
    asset = AssetFactory(tenant=tenant)
    holder = _holder(tenant, operator, asset, holder_mode)
    waiter = _noop_on(tenant, operator, asset, action_class)
    outcome, round_trips = _worker_path(waiter)
    assert outcome == "lock_wait" and round_trips <= round_trips_at_most, round_trips
    assert _parked(waiter) and QueueItem.objects.get(execution=waiter).attempt_count == 0
    assert _types(waiter)[2:] == ["lock_wait"], "one lock_wait, nothing of the run is recorded"
    wait = ExecutionEvent.objects.get(execution=waiter, event_type="lock_wait")
    assert wait.details["holder_execution_id"] == str(holder.execution_id)
    assert Execution.objects.get(pk=waiter.pk).status == ExecutionStatus.QUEUED

    locks_give(execution=holder, assets=[str(asset.pk)])
    assert not _parked(waiter), "the release woke it"
    assert _worker_path(waiter)[0] == ExecutionStatus.COMPLETED
    assert not ExecutionLockWaiter.objects.filter(execution=waiter).exists()


def test_a_waiting_writer_that_runs_inline_leaves_its_line_and_wakes_the_readers_behind_it(
    tenant: Any, operator: Any
) -> None:
    asset = AssetFactory(tenant=tenant)
    holder = _holder(tenant, operator, asset, EXCLUSIVE)
    writer = _noop_on(tenant, operator, asset, "modify")
    readers = [_noop_on(tenant, operator, asset, "read") for _ in range(2)]
    for execution in (writer, *readers):
        assert _worker_path(execution)[0] == "lock_wait"
    locks_give(execution=holder, assets=[str(asset.pk)])
    assert [_parked(e) for e in (writer, *readers)] == [False, True, True], "a writer first in line"
    assert _worker_path(writer)[0] == ExecutionStatus.COMPLETED
    assert [_parked(e) for e in readers] == [False, False], "its statement woke the readers"
    for reader in readers:
        assert _worker_path(reader)[0] == ExecutionStatus.COMPLETED


def test_the_inline_locked_statement_loses_to_a_cancel_and_writes_nothing(tenant: Any, operator: Any) -> None:
    asset = AssetFactory(tenant=tenant)
    execution = _noop_on(tenant, operator, asset, "modify")
    ctx = claim.claim_with_context(worker_id="w")
    assert ctx is not None
    execution_cancel(execution=execution)
    before = _types(execution)
    result = store.run_inline_locked(
        ctx=ctx,
        expected="queued",
        requests=[LockRequest(str(asset.pk), EXCLUSIVE)],
        done=[{"index": 0, "status": "completed"}],
        events=[{"type": "lock_acquired", "details": {}}],
    )
    assert not result.recorded and result.busy is None
    assert _types(execution) == before
    assert not ExecutionLock.objects.filter(asset_id=str(asset.pk), is_active=True).exists()


def _share_row_in_flight(tenant: Any, asset: Any) -> Any:
    """Another connection in the middle of a reader's inline statement: the asset's lock row
    locked ``FOR SHARE``, its transaction open. Returns the connection (commit it to end)."""
    params = dict(connection.get_connection_params())
    params.pop("cursor_factory", None)
    other = psycopg2.connect(**params)
    with other.cursor() as cur:
        cur.execute(
            "SELECT id FROM execution_locks WHERE tenant_id = %s AND asset_id = %s FOR SHARE",
            [tenant.pk, str(asset.pk)],
        )
        assert cur.fetchone() is not None
    return other


def test_a_reader_records_its_run_while_another_readers_statement_holds_the_row(
    tenant: Any, operator: Any
) -> None:
    """Readers of one asset do not queue behind each other's statement: the inline run of a
    reader judges the row under FOR SHARE (it took FOR UPDATE, so two workers reading one
    asset recorded their runs one after the other)."""
    asset = AssetFactory(tenant=tenant)
    assert _worker_path(_noop_on(tenant, operator, asset, "read"))[0] == ExecutionStatus.COMPLETED
    other = _share_row_in_flight(tenant, asset)
    try:
        with connection.cursor() as cur:
            cur.execute("SET lock_timeout = '3s'")  # the old statement waited here, then failed
        reader = _noop_on(tenant, operator, asset, "read")
        outcome, round_trips = _worker_path(reader)
        assert outcome == ExecutionStatus.COMPLETED and round_trips <= 2, round_trips
    finally:
        with connection.cursor() as cur:
            cur.execute("SET lock_timeout = 0")
        other.rollback()
        other.close()


def test_a_writer_waits_for_a_readers_statement_in_flight(tenant: Any, operator: Any) -> None:
    """A writer's inline run still locks the row FOR UPDATE: it waits until the reader's
    statement commits, so no writer's hold can begin inside a reader's."""
    asset = AssetFactory(tenant=tenant)
    assert _worker_path(_noop_on(tenant, operator, asset, "read"))[0] == ExecutionStatus.COMPLETED
    other = _share_row_in_flight(tenant, asset)
    writer = _noop_on(tenant, operator, asset, "modify")
    outcomes: list[str] = []

    def run() -> None:
        try:
            ctx = claim.claim_with_context(worker_id="writer")
            assert ctx is not None
            outcomes.append(attempt_run(ctx=ctx, worker_id="writer"))
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    try:
        thread.start()
        with connection.cursor() as cur:  # the writer's backend waits on the reader's row lock
            for _ in range(200):
                cur.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
                    ["%execution_locks%"],
                )
                if cur.fetchone()[0]:
                    break
                time.sleep(0.05)
            else:
                pytest.fail("the writer never waited for the reader's row lock")
        assert Execution.objects.get(pk=writer.pk).status == ExecutionStatus.QUEUED
    finally:
        other.commit()
        other.close()
        thread.join(30)
    assert outcomes == [ExecutionStatus.COMPLETED]


def test_the_workers_statements_keep_their_generic_plans(tenant: Any, operator: Any) -> None:
    """Left to choose (plan_cache_mode auto), PostgreSQL planned the inline run with asset
    locks anew at every execution, its planning costing more than its work; the worker's
    session keeps one generic plan per prepared statement."""
    asset = AssetFactory(tenant=tenant)
    connection.close()  # a new session, as a worker's
    for action_class in ["read", "modify"] * 8:
        assert _worker_path(_noop_on(tenant, operator, asset, action_class))[0] == ExecutionStatus.COMPLETED
    with connection.cursor() as cur:
        cur.execute("SELECT name, generic_plans, custom_plans FROM pg_prepared_statements ORDER BY name")
        plans = {name: (generic, custom) for name, generic, custom in cur.fetchall()}
    assert {"ops_claim", "ops_inline_locked", "ops_inline_shared"} <= set(plans), plans
    assert all(custom == 0 and generic > 0 for generic, custom in plans.values()), plans
