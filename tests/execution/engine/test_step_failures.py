"""A failed step is a result, a lost worker is a fault (docs/contract.md#truth).

A step that ran and failed runs again only as its own ``max_retries`` say (default 0 for
modify and deploy steps, 2 for read steps), never through the queue's attempts, and is
never dead-lettered. The queue's attempts and the DLQ are for faults of the platform, and a
dead letter names the fault. Real ``manage.py qcluster`` processes where the behaviour is the
workers'; the reaper's choices in-process.
"""

from __future__ import annotations

import os
import signal
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from execution.enums import DlqFault, ExecutionStatus
from execution.models import DeadLetter, Execution, ExecutionEvent, ExecutionStep, QueueItem
from execution.services.reaper import reap_expired
from execution.worker import claim, runtime
from tests.execution.engine.helpers import (
    drain_until_done,
    enqueue,
    make_execution,
    wait_until,
    worker_cluster,
)

pytestmark = pytest.mark.django_db(transaction=True)

FAST_RECOVERY = {
    "OPS_LEASE_SECONDS": "6",
    "OPS_REAPER_INTERVAL_SECONDS": "1",
    "OPS_RETRY_BACKOFF_BASE_SECONDS": "0.2",
}


def _types(execution: Execution) -> list[str]:
    return list(
        ExecutionEvent.objects.filter(execution=execution).order_by("id").values_list("event_type", flat=True)
    )


def _finished(execution: Execution) -> bool:
    execution.refresh_from_db()
    return execution.status not in (ExecutionStatus.QUEUED, ExecutionStatus.RUNNING)


@pytest.mark.slow
def test_a_command_exiting_1_runs_once_on_real_workers_fails_the_execution_and_is_no_dead_letter(
    tenant: Any, operator: Any, local_asset: Any, shared_dir: Path
) -> None:
    runs = shared_dir / "runs"
    execution = make_execution(
        tenant=tenant,
        actor=operator,
        action_class="modify",  # e.g. a systemctl restart: default max_retries 0
        steps=[
            {
                "name": "restart",
                "type": "command",
                "target": {"asset_id": local_asset.pk},
                "params": {"command": f"printf x >> {runs}; exit 1"},
            }
        ],
    )
    assert ExecutionStep.objects.get(execution=execution).max_retries == 0
    enqueue(execution)
    with worker_cluster(workers=1, **FAST_RECOVERY):
        wait_until(lambda: _finished(execution), 90, what="the execution to end")
    assert execution.status == ExecutionStatus.FAILED
    assert "step 0 (restart) failed" in execution.error_message
    assert runs.read_text() == "x", "ran once: the queue never runs a failed step again"
    assert not DeadLetter.objects.filter(execution=execution).exists()
    item = QueueItem.objects.get(execution=execution)
    assert item.attempt_count == 1 and item.status == "failed"
    types = _types(execution)
    assert types.count("step_started") == 1 and "retry_scheduled" not in types
    assert "failed" in types and "dead_lettered" not in types


def test_a_read_step_is_retried_by_its_own_max_retries_without_spending_queue_attempts(
    tenant: Any, operator: Any, local_asset: Any, shared_dir: Path, settings: Any
) -> None:
    settings.RETRY_BACKOFF_BASE_SECONDS = 0.05
    runs = shared_dir / "runs"
    execution = make_execution(
        tenant=tenant,
        actor=operator,
        action_class="read",
        steps=[
            {
                "name": "check",
                "type": "command",
                "target": {"asset_id": local_asset.pk},
                "params": {"command": f"printf x >> {runs}; exit 1"},
            }
        ],
    )
    step = ExecutionStep.objects.get(execution=execution)
    assert step.max_retries == 2  # the default for a read step
    enqueue(execution)
    QueueItem.objects.filter(execution=execution).update(max_attempts=1)  # would be spent at once
    execution = drain_until_done(execution)
    assert execution.status == ExecutionStatus.FAILED
    assert runs.read_text() == "xxx"
    step.refresh_from_db()
    assert step.retry_count == 2 and step.status == ExecutionStatus.FAILED
    assert QueueItem.objects.get(execution=execution).attempt_count == 1
    retries = ExecutionEvent.objects.filter(execution=execution, event_type="retry_scheduled")
    assert [e.details["reason"].rsplit("(", 1)[1] for e in retries] == ["retry 1 of 2)", "retry 2 of 2)"]
    assert not DeadLetter.objects.filter(execution=execution).exists()


def test_a_step_that_asks_for_a_retry_gets_it_and_the_second_run_completes(
    tenant: Any, operator: Any, local_asset: Any, shared_dir: Path, settings: Any
) -> None:
    settings.RETRY_BACKOFF_BASE_SECONDS = 0.05
    flag = shared_dir / "flag"
    execution = make_execution(
        tenant=tenant,
        actor=operator,
        action_class="modify",
        steps=[
            {
                "type": "command",
                "target": {"asset_id": local_asset.pk},
                "params": {"command": f"test -e {flag} || {{ touch {flag}; exit 1; }}"},
                "max_retries": 1,
            }
        ],
    )
    enqueue(execution)
    execution = drain_until_done(execution)
    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    assert ExecutionStep.objects.get(execution=execution).retry_count == 1
    assert not DeadLetter.objects.exists()


def test_continue_on_error_failures_are_not_run_again_by_the_queue(
    tenant: Any, operator: Any, shared_dir: Path, local_asset: Any
) -> None:
    """All steps failed past ``continue_on_error``: the execution fails once (this outcome
    used to take the queue's retry path)."""
    runs = shared_dir / "runs"
    step = {
        "type": "command",
        "target": {"asset_id": local_asset.pk},
        "params": {"command": f"printf x >> {runs}; exit 1"},
        "continue_on_error": True,
    }
    execution = make_execution(tenant=tenant, actor=operator, steps=[step, step])
    enqueue(execution)
    execution = drain_until_done(execution)
    assert execution.status == ExecutionStatus.FAILED
    assert runs.read_text() == "xx"
    assert not DeadLetter.objects.exists()


def _worker_pid(execution: Execution) -> int:
    worker = QueueItem.objects.get(execution=execution).worker_id
    return int(worker.rsplit(":", 1)[1])


def _running_step(execution: Execution) -> bool:
    return (
        ExecutionStep.objects.filter(execution=execution, status="running").exists()
        and QueueItem.objects.filter(execution=execution, status="processing").exists()
    )


@pytest.mark.slow
def test_a_killed_worker_spends_an_attempt_and_past_max_attempts_is_dead_lettered_worker_lost(
    tenant: Any, operator: Any
) -> None:
    execution = make_execution(
        tenant=tenant, actor=operator, steps=[{"name": "long", "type": "sleep", "params": {"seconds": 60}}]
    )
    enqueue(execution)
    QueueItem.objects.filter(execution=execution).update(max_attempts=2)
    with worker_cluster(workers=1, **FAST_RECOVERY):
        for attempt in (1, 2):
            wait_until(
                lambda n=attempt: _running_step(execution) and _types(execution).count("step_started") == n,
                90,
                what=f"attempt {attempt} running its step",
            )
            os.kill(_worker_pid(execution), signal.SIGKILL)
            if attempt == 1:
                wait_until(lambda: "retry_scheduled" in _types(execution), 60, what="the reaper's retry")
        wait_until(lambda: _finished(execution), 60, what="the dead letter")
    assert execution.status == ExecutionStatus.FAILED
    entry = DeadLetter.objects.get(execution=execution)
    assert entry.failure_reason == DlqFault.WORKER_LOST and entry.attempt_count == 2
    assert "stopped heartbeating" in entry.last_error
    retry = ExecutionEvent.objects.get(execution=execution, event_type="retry_scheduled")
    assert retry.details["fault"] == DlqFault.WORKER_LOST
    assert _types(execution).count("step_started") == 2


def _claimed(tenant: Any, operator: Any) -> tuple[Execution, claim.AttemptContext]:
    execution = make_execution(tenant=tenant, actor=operator, steps=[{"type": "noop"}])
    enqueue(execution)
    QueueItem.objects.filter(execution=execution).update(max_attempts=1)
    ctx = claim.claim_with_context(worker_id="test-host:1")
    assert ctx is not None and ctx.pk == execution.pk
    return execution, ctx


def test_a_worker_over_its_lease_timeout_is_dead_lettered_lease_timeout(tenant: Any, operator: Any) -> None:
    execution, _ = _claimed(tenant, operator)
    # As the heartbeat leaves it once the attempt reached its cap: the lease ends exactly at
    # attempt_started_at + visibility_timeout_seconds, now past.
    started = timezone.now() - timedelta(seconds=120)
    QueueItem.objects.filter(execution=execution).update(
        attempt_started_at=started,
        lease_expires_at=started + timedelta(seconds=60),
        visibility_timeout_seconds=60,
    )
    assert reap_expired()["dead_lettered"] == 1
    entry = DeadLetter.objects.get(execution=execution)
    assert entry.failure_reason == DlqFault.LEASE_TIMEOUT and "lease timeout (60s)" in entry.last_error


@pytest.mark.parametrize(
    ("error", "fault"),
    [
        (OperationalError("server closed the connection unexpectedly"), DlqFault.DATABASE_UNREACHABLE),
        (RuntimeError("a bug"), DlqFault.WORKER_CRASHED),
    ],
)
def test_a_crashed_attempt_ends_its_lease_and_the_dead_letter_names_the_crash(
    tenant: Any, operator: Any, error: Exception, fault: str
) -> None:
    execution, ctx = _claimed(tenant, operator)
    runtime._attempt_crashed(ctx, error)
    assert reap_expired()["dead_lettered"] == 1, "the lease ended with the crash, not 30 s later"
    entry = DeadLetter.objects.get(execution=execution)
    assert entry.failure_reason == fault
    assert type(error).__name__ in entry.last_error and "test-host:1" in entry.last_error
    # Read once: the item's error no longer starts as a crash mark, so a later lost worker
    # is not taken for a crash.
    assert not QueueItem.objects.get(execution=execution).last_error.startswith("attempt crashed")


def test_the_database_refuses_a_dead_letter_without_a_fault(tenant: Any, operator: Any) -> None:
    from django.db import IntegrityError, transaction

    execution = make_execution(tenant=tenant, actor=operator, steps=[{"type": "noop"}])
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            "INSERT INTO execution_dlq (dlq_id, execution_id, failure_reason, failure_details, attempt_count,"
            " last_error, sla_class, failed_at, requeued, created_at, archived) VALUES (gen_random_uuid(), %s,"
            " 'max_attempts_exceeded', '{}', 3, '', 'medium', now(), false, now(), false)",
            [str(execution.execution_id)],
        )


def test_a_submitted_step_gets_its_class_default_max_retries_not_the_queues_attempts(
    tenant: Any, operator: Any
) -> None:
    from execution.services.submit import execution_submit

    plan = {
        "name": "defaults",
        "environment": "dev",
        "steps": [
            {"name": "look", "type": "noop", "action_class": "read"},
            {"name": "change", "type": "noop", "action_class": "modify"},
            {"name": "asked", "type": "noop", "action_class": "modify", "max_retries": 4},
        ],
    }
    outcome = execution_submit(tenant=tenant, actor=operator, plan=plan, approval_level=1)
    steps = ExecutionStep.objects.filter(execution=outcome.execution).order_by("step_index")
    assert [s.max_retries for s in steps] == [2, 0, 4]


@pytest.mark.usefixtures("loopback_opened")
def test_a_target_that_refuses_the_connection_spends_queue_attempts_and_is_dead_lettered_target_unreachable(
    tenant: Any, operator: Any, settings: Any
) -> None:
    """An ssh asset on a closed loopback port: nothing reached the target, a platform fault.
    The queue's attempts retry it (the step's own max_retries do not), then the DLQ names it."""
    from execution.enums import ConnectionType
    from tests.factories import AssetFactory
    from tests.support.processes import free_port

    settings.RETRY_BACKOFF_BASE_SECONDS = 0.05
    closed = free_port()  # bound and released: nothing listens there
    asset = AssetFactory(
        tenant=tenant, hostname="gone", connection_type=ConnectionType.SSH, address="127.0.0.1", port=closed
    )
    execution = make_execution(
        tenant=tenant,
        actor=operator,
        action_class="read",  # max_retries 2: not what retries an unreachable target
        steps=[
            {
                "name": "look",
                "type": "command",
                "target": {"asset_id": asset.pk},
                "params": {"command": "true"},
            }
        ],
    )
    enqueue(execution)
    QueueItem.objects.filter(execution=execution).update(max_attempts=2)
    execution = drain_until_done(execution)
    assert execution.status == ExecutionStatus.FAILED
    assert "target unreachable" in execution.error_message and str(closed) in execution.error_message
    entry = DeadLetter.objects.get(execution=execution)
    assert entry.failure_reason == DlqFault.TARGET_UNREACHABLE and entry.attempt_count == 2
    retry = ExecutionEvent.objects.get(execution=execution, event_type="retry_scheduled")
    assert retry.details["fault"] == DlqFault.TARGET_UNREACHABLE
    assert _types(execution).count("step_started") == 2 and "dead_lettered" in _types(execution)
    step = ExecutionStep.objects.get(execution=execution)
    assert step.status == ExecutionStatus.FAILED and step.retry_count == 1
    assert QueueItem.objects.get(execution=execution).attempt_count == 2


@pytest.mark.usefixtures("loopback_opened")
def test_an_ssh_target_whose_name_does_not_resolve_is_unreachable_not_a_failed_command() -> None:
    from execution.runners.base import ResolvedTarget, StepContext
    from execution.runners.connections.ssh import run_command

    target = ResolvedTarget(asset_id="1", hostname="nowhere.invalid", connection_type="ssh")
    ctx = StepContext(
        execution_id="00000000-0000-0000-0000-000000000001",
        tenant_slug="acme",
        step_index=0,
        step_name="look",
        step_type="command",
        params={"command": "true"},
        target=target,
        timeout_seconds=5,
    )
    result = run_command(ctx)
    assert result.status == ExecutionStatus.FAILED and result.unreachable
    assert "does not resolve" in result.error_message
