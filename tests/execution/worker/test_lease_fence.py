"""A worker whose lease expired records nothing more: the heartbeat does not renew an expired
lease, and every statement of the attempt (the inline record, the lock take, the step's end)
refuses it. The asset locks expire with the lease, so another execution may already hold them:
an operator's trial stopped a worker (SIGSTOP) during a modify step past its lease, a reader
took the asset, and the resumed worker renewed its lease and recorded the step completed
after the reader ran inside it. Now it trips ``lease_lost`` and the reaper hands it back."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from execution.enums import ExecutionStatus, QueueStatus
from execution.models import Execution, ExecutionEvent, ExecutionLock, QueueItem
from execution.services.reaper import reap_expired
from execution.worker import beats, claim
from execution.worker.attempt import attempt_run
from tests.execution.engine.helpers import enqueue, make_execution
from tests.factories import AssetFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _claimed(
    tenant: Any, operator: Any, step: dict[str, Any], action_class: str = "read"
) -> claim.AttemptContext:
    execution = make_execution(tenant=tenant, actor=operator, steps=[step], action_class=action_class)
    enqueue(execution)
    ctx = claim.claim_with_context(worker_id="fence")
    assert ctx is not None and ctx.execution_id == execution.execution_id
    return ctx


def _expire(ctx: claim.AttemptContext) -> None:
    QueueItem.objects.filter(pk=ctx.item_id).update(
        lease_expires_at=timezone.now() - timezone.timedelta(seconds=1)
    )


def _recorded(ctx: claim.AttemptContext) -> list[str]:
    return list(
        ExecutionEvent.objects.filter(execution__execution_id=ctx.execution_id)
        .order_by("id")
        .values_list("event_type", flat=True)
    )


def test_the_heartbeat_does_not_renew_an_expired_lease(tenant: Any, operator: Any) -> None:
    ctx = _claimed(tenant, operator, {"type": "noop"})
    assert beats.lease_heartbeat(ctx=ctx, has_locks=False)  # alive: renewed
    _expire(ctx)
    assert not beats.lease_heartbeat(ctx=ctx, has_locks=False)
    assert QueueItem.objects.get(pk=ctx.item_id).lease_expires_at < timezone.now()


@pytest.mark.parametrize("on_asset", [False, True], ids=["no target", "modify on an asset"])
def test_an_inline_attempt_past_its_lease_records_nothing_and_takes_no_lock(
    tenant: Any, operator: Any, on_asset: bool
) -> None:
    asset = AssetFactory(tenant=tenant)
    step: dict[str, Any] = {"type": "noop", "action_class": "modify"}
    if on_asset:
        step["target"] = {"asset_id": asset.pk}
    ctx = _claimed(tenant, operator, step, action_class="modify")
    _expire(ctx)
    attempt_run(ctx=ctx, worker_id="fence")
    assert Execution.objects.get(execution_id=ctx.execution_id).status != ExecutionStatus.COMPLETED
    assert "completed" not in _recorded(ctx) and "lock_acquired" not in _recorded(ctx)
    assert not ExecutionLock.objects.filter(is_active=True, holders__contains=[ctx.execution_id]).exists()
    # Not lost either: the item waits for the reaper, which returns it to the queue, and the
    # next attempt runs it.
    assert QueueItem.objects.get(pk=ctx.item_id).status == QueueStatus.PROCESSING
    assert reap_expired()["returned"] == 1
    QueueItem.objects.filter(pk=ctx.item_id).update(available_at=timezone.now())
    again = claim.claim_with_context(worker_id="fence")
    assert again is not None and again.execution_id == ctx.execution_id
    assert attempt_run(ctx=again, worker_id="fence") == ExecutionStatus.COMPLETED


def test_a_step_whose_lease_expires_while_it_runs_is_not_recorded_completed(
    tenant: Any, operator: Any
) -> None:
    """The trial's case in one process: a modify step on an asset runs while its lease runs
    out (here set in the past, as a long stall would leave it)."""
    asset = AssetFactory(tenant=tenant)
    step = {
        "type": "sleep",
        "params": {"seconds": 1},
        "target": {"asset_id": asset.pk},
        "action_class": "modify",
    }
    ctx = _claimed(tenant, operator, step, action_class="modify")

    def expire_once_running() -> None:
        for _ in range(100):
            if "step_started" in _recorded(ctx):
                _expire(ctx)
                break
            threading.Event().wait(0.02)
        connection.close()

    expiring = threading.Thread(target=expire_once_running)
    expiring.start()
    outcome = attempt_run(ctx=ctx, worker_id="fence")
    expiring.join()
    assert "step_started" in _recorded(ctx)
    assert outcome == "lease_lost"
    assert "step_completed" not in _recorded(ctx) and "completed" not in _recorded(ctx)
