"""The engine in this process: steps, retries, DLQ, cancel before start, locks, reaper, output.

Cancel and timeouts of a running command: test_engine_interrupts.py."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from execution.enums import ConnectionType, DlqFault, ExecutionStatus, QueueStatus
from execution.models import (
    DeadLetter,
    ExecutionEvent,
    ExecutionStep,
    QueueItem,
)
from execution.services.cancel import execution_cancel
from execution.services.dlq import dlq_record, dlq_requeue
from execution.services.reaper import reap_expired
from execution.worker.claim import claim_with_context
from execution.worker.runtime import drain
from tests.execution.engine.helpers import (
    drain_until_done,
    enqueue,
    event_types,
    make_execution,
)
from tests.factories import AssetFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fast_retries(settings):  # type: ignore[no-untyped-def]
    settings.RETRY_BACKOFF_BASE_SECONDS = 0.2


def test_a_command_plan_runs_to_completed_with_recorded_steps(
    tenant, operator, local_asset, shared_dir: Path
) -> None:
    out = shared_dir / "out"
    execution = make_execution(
        tenant=tenant,
        actor=operator,
        steps=[
            {
                "name": "write",
                "type": "command",
                "target": {"asset_id": local_asset.pk},
                "params": {"command": f"echo hello; printf A >> {out}"},
            },
            {"name": "nothing", "type": "noop"},
        ],
    )
    enqueue(execution)
    execution = drain_until_done(execution)
    assert execution.status == ExecutionStatus.COMPLETED
    assert out.read_text() == "A"
    first = ExecutionStep.objects.get(execution=execution, step_index=0)
    assert first.status == ExecutionStatus.COMPLETED
    assert first.exit_code == 0
    assert first.output_data["stdout"].startswith("hello")
    assert first.logs == "[stdout]\nhello\n", "the step's log is its streams as text"
    assert first.duration_ms is not None and first.started_at and first.completed_at
    types = event_types(execution)
    assert types[:2] == ["approved", "queued"]
    assert "started" in types and types[-1] == "completed"
    assert types.count("step_started") == 2 and types.count("step_completed") == 2
    assert QueueItem.objects.get(execution=execution).status == QueueStatus.COMPLETED


def test_a_step_that_fails_twice_then_succeeds_is_retried_with_growing_delays(
    tenant, operator, local_asset, shared_dir: Path
) -> None:
    counter = shared_dir / "count"
    command = f"n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; [ $n -ge 3 ]"
    execution = make_execution(
        tenant=tenant,
        actor=operator,
        steps=[
            {
                "type": "command",
                "target": {"asset_id": local_asset.pk},
                "params": {"command": command},
                "max_retries": 2,  # the step asks for it (a modify step's default is 0)
            }
        ],
    )
    enqueue(execution)
    execution = drain_until_done(execution)
    assert execution.status == ExecutionStatus.COMPLETED
    assert counter.read_text().strip() == "3"
    retries = ExecutionEvent.objects.filter(execution=execution, event_type="retry_scheduled").order_by("id")
    delays = [e.details["delay_seconds"] for e in retries]
    assert len(delays) == 2
    assert delays[1] >= delays[0]
    assert ExecutionStep.objects.get(execution=execution).retry_count == 2


def test_an_always_failing_step_fails_without_a_dead_letter_and_a_requeue_resumes_at_it(
    tenant, operator, local_asset, shared_dir: Path
) -> None:
    marker, flag = shared_dir / "a", shared_dir / "flag"
    execution = make_execution(
        tenant=tenant,
        actor=operator,
        sla_class="fast",
        steps=[
            {
                "type": "command",
                "target": {"asset_id": local_asset.pk},
                "params": {"command": f"printf A >> {marker}"},
            },
            {
                "type": "command",
                "target": {"asset_id": local_asset.pk},
                "params": {"command": f"test -e {flag}"},
            },
        ],
    )
    enqueue(execution)
    execution = drain_until_done(execution)
    assert execution.status == ExecutionStatus.FAILED
    # A step that ran and failed is a result: no dead letter, one queue attempt.
    assert not DeadLetter.objects.filter(execution=execution).exists()
    assert QueueItem.objects.get(execution=execution).attempt_count == 1
    assert "dead_lettered" not in event_types(execution)
    assert marker.read_text() == "A"

    # Had a platform fault dead-lettered it (as the reaper does), a requeue resumes at the
    # step that did not complete; the completed first step never runs again.
    entry = dlq_record(execution=execution, reason=DlqFault.WORKER_LOST, last_error="lease expired")
    flag.touch()
    dlq_requeue(entry=entry, operator=operator)
    entry.refresh_from_db()
    assert entry.requeued and entry.requeued_by == operator and entry.requeued_at
    execution = drain_until_done(execution)
    assert execution.status == ExecutionStatus.COMPLETED
    assert marker.read_text() == "A"
    assert "requeued" in event_types(execution)


def test_the_reaper_returns_an_expired_lease_and_the_run_resumes(
    tenant, operator, local_asset, shared_dir: Path
) -> None:
    marker = shared_dir / "m"
    execution = make_execution(
        tenant=tenant,
        actor=operator,
        steps=[
            {
                "type": "command",
                "target": {"asset_id": local_asset.pk},
                "params": {"command": f"printf A >> {marker}"},
            },
            {"type": "noop"},
        ],
    )
    enqueue(execution)
    claim = claim_with_context(worker_id="dead-worker")
    assert claim is not None
    # Simulate a worker that started, completed step 0, began step 1 and died.
    from execution.services.transition import transition

    transition(execution, ExecutionStatus.RUNNING)
    ExecutionStep.objects.filter(execution=execution, step_index=0).update(status="completed")
    ExecutionStep.objects.filter(execution=execution, step_index=1).update(status="running")
    QueueItem.objects.filter(pk=claim.item_id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    counts = reap_expired()
    assert counts["returned"] == 1
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.QUEUED
    assert "retry_scheduled" in event_types(execution)
    execution = drain_until_done(execution)
    assert execution.status == ExecutionStatus.COMPLETED
    assert not marker.exists(), "the completed step did not run again"
    assert ExecutionStep.objects.get(execution=execution, step_index=1).retry_count == 1


def test_cancel_before_running_is_immediate_and_idempotent(tenant, operator) -> None:
    execution = make_execution(tenant=tenant, actor=operator, steps=[{"type": "noop"}])
    enqueue(execution)
    first = execution_cancel(execution=execution, actor=operator)
    again = execution_cancel(execution=execution, actor=operator)
    assert first.status == again.status == ExecutionStatus.CANCELLED
    assert QueueItem.objects.get(execution=execution).status == QueueStatus.COMPLETED
    assert event_types(execution).count("cancelled") == 1
    assert drain(budget_seconds=0.5) == 0


def test_partial_when_a_continue_on_error_step_fails(tenant, operator, local_asset) -> None:
    execution = make_execution(
        tenant=tenant,
        actor=operator,
        steps=[
            {
                "type": "command",
                "target": {"asset_id": local_asset.pk},
                "params": {"command": "exit 3"},
                "continue_on_error": True,
            },
            {"type": "noop"},
        ],
    )
    enqueue(execution)
    execution = drain_until_done(execution)
    assert execution.status == ExecutionStatus.PARTIAL
    assert ExecutionStep.objects.get(execution=execution, step_index=0).exit_code == 3


def test_a_dry_run_has_no_side_effect_and_its_events_say_what_would_run(
    tenant, operator, local_asset, shared_dir: Path
) -> None:
    target = shared_dir / "never"
    execution = make_execution(
        tenant=tenant,
        actor=operator,
        steps=[
            {
                "type": "command",
                "target": {"asset_id": local_asset.pk},
                "params": {"command": f"touch {target}"},
            }
        ],
    )
    type(execution).objects.filter(pk=execution.pk).update(dry_run=True)
    enqueue(execution)
    execution = drain_until_done(execution)
    assert execution.status == ExecutionStatus.COMPLETED
    assert not target.exists()
    done = ExecutionEvent.objects.get(execution=execution, event_type="step_completed")
    assert done.details["dry_run"] is True
    assert f"touch {target}" in str(done.details["would_run"])


def test_stdout_and_stderr_are_kept_apart(tenant, operator, local_asset) -> None:
    execution = make_execution(
        tenant=tenant,
        actor=operator,
        steps=[
            {
                "type": "command",
                "target": {"asset_id": local_asset.pk},
                "params": {"command": "printf 'a\\nb\\nc\\n'; printf 'oops\\n' >&2"},
            }
        ],
    )
    enqueue(execution)
    execution = drain_until_done(execution)
    output = ExecutionStep.objects.get(execution=execution).output_data
    assert output["stdout"] == "a\nb\nc\n"
    assert output["stderr"] == "oops\n"


@pytest.mark.usefixtures("loopback_opened")  # the target database listens on loopback
def test_output_with_nul_bytes_and_nan_is_recorded_and_each_step_runs_once(
    tenant, operator, local_asset, shared_dir: Path, target_pg
) -> None:
    """A NUL byte in a command's output and a NaN from a query were not storable (text, jsonb):
    the step's record failed, the attempt crashed and, once its lease expired, its steps ran
    again. Now they are stored as U+FFFD and "NaN" and the run completes in one attempt."""
    database = AssetFactory(
        tenant=tenant,
        hostname="pg-loopback",
        connection_type=ConnectionType.DATABASE,
        **target_pg.asset_fields(),
    )
    runs = shared_dir / "runs"
    execution = make_execution(
        tenant=tenant,
        actor=operator,
        steps=[
            {
                "name": "nul",
                "type": "command",
                "target": {"asset_id": local_asset.pk},
                "params": {"command": f"printf A >> {runs}; printf 'a\\000b\\n'; printf 'c\\000d\\n' >&2"},
            },
            {
                "name": "nan",
                "type": "sql",
                "target": {"asset_id": database.pk},
                "params": {"query": "SELECT 'NaN'::float8 AS n, '-Infinity'::float8 AS i"},
            },
        ],
    )
    enqueue(execution)
    execution = drain_until_done(execution)
    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    nul, nan = ExecutionStep.objects.filter(execution=execution).order_by("step_index")
    assert (nul.output_data["stdout"], nul.output_data["stderr"]) == ("a\ufffdb\n", "c\ufffdd\n")
    assert nan.output_data["rows"] == [["NaN", "-Infinity"]]
    assert runs.read_text() == "A", "the command ran once"
    assert QueueItem.objects.get(execution=execution).attempt_count == 1
