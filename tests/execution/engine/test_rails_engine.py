"""Rails the worker holds before and while it runs (docs/security.md): the plan that runs is
the plan that was approved, the timeout policy is the one of submission, and an execution
that could not start fails from ``queued`` without ever looking started."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from approvals.models import Approval
from execution.enums import ExecutionStatus
from execution.models import Execution, ExecutionEvent, ExecutionStep, Membership, TimeoutPolicy
from execution.services.queue import queue_enqueue
from execution.services.submit import execution_submit
from execution.services.transition import transition
from monitoring.selectors import figures
from tests.execution.engine.helpers import drain_until_done
from tests.factories import snapshot_overwrite

pytestmark = pytest.mark.django_db(transaction=True)


def _types(execution: Execution) -> list[str]:
    return list(execution.events.order_by("id").values_list("event_type", flat=True))


def _touch_plan(asset: Any, path: Path, environment: str = "dev") -> dict[str, Any]:
    return {
        "name": "touch",
        "environment": environment,
        "estimated_duration_seconds": 30,
        "steps": [
            {
                "name": "touch",
                "type": "command",
                "target": {"asset_id": asset.pk},
                "params": {"command": f"touch {path}"},
            }
        ],
    }


def _assert_never_started(execution: Execution) -> None:
    assert execution.status == ExecutionStatus.FAILED
    assert execution.previous_status == ExecutionStatus.QUEUED
    assert execution.started_at is None
    assert "started" not in _types(execution)
    # No step started (the steps that will not run end cancelled).
    assert not ExecutionStep.objects.filter(execution=execution, started_at__isnull=False).exists()


def test_a_snapshot_changed_around_the_trigger_fails_plan_tampered_and_runs_nothing(
    tenant: Any, operator: Any, local_asset: Any, shared_dir: Path
) -> None:
    approved_file, tampered_file = shared_dir / "approved", shared_dir / "tampered"
    plan = _touch_plan(local_asset, approved_file)
    execution = execution_submit(tenant=tenant, actor=operator, plan=plan).execution
    assert execution.status == ExecutionStatus.QUEUED
    tampered = _touch_plan(local_asset, tampered_file)
    snapshot_overwrite(execution.pk, tampered)  # as the database superuser, around the trigger
    execution = drain_until_done(execution)
    _assert_never_started(execution)
    assert "plan_tampered" in _types(execution)
    assert "plan tampered" in execution.error_message
    assert not approved_file.exists() and not tampered_file.exists(), "nothing ran"


def test_an_approval_given_for_another_plan_hash_fails_plan_tampered_and_runs_nothing(
    tenant: Any, operator: Any, local_asset: Any, shared_dir: Path
) -> None:
    path = shared_dir / "ran"
    plan = _touch_plan(local_asset, path, environment="staging")
    execution = execution_submit(tenant=tenant, actor=operator, plan=plan, approval_level=1).execution
    Approval.objects.filter(execution=execution).update(plan_hash="0" * 64, state="approved")
    transition(execution, ExecutionStatus.APPROVED, reason="test")
    queue_enqueue(execution=Execution.objects.get(pk=execution.pk))
    execution = drain_until_done(execution)
    _assert_never_started(execution)
    assert "plan_tampered" in _types(execution) and "approved" in execution.error_message
    assert not path.exists()


def test_the_untampered_plan_runs(tenant: Any, operator: Any, local_asset: Any, shared_dir: Path) -> None:
    path = shared_dir / "ran"
    execution = execution_submit(tenant=tenant, actor=operator, plan=_touch_plan(local_asset, path)).execution
    assert drain_until_done(execution).status == ExecutionStatus.COMPLETED, execution.error_message
    assert path.exists()


def test_a_policy_edit_after_submission_changes_neither_timeout_at_nor_the_step_timeout(
    tenant: Any, operator: Any
) -> None:
    plan = {
        "name": "sleepy",
        "environment": "dev",
        "estimated_duration_seconds": 20,  # medium x read: step 15 s, execution 30 s
        "steps": [{"name": "nap", "type": "sleep", "params": {"seconds": 1.5}}],
    }
    execution = execution_submit(tenant=tenant, actor=operator, plan=plan).execution
    # Edited after submission: with these values the nap would time out and timeout_at move.
    TimeoutPolicy.objects.filter(sla_class="medium", action_class="read").update(
        step_timeout_seconds=1, execution_timeout_seconds=3600
    )
    execution = drain_until_done(execution)
    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    assert execution.timeout_policy["step_timeout_seconds"] == 15
    window = (execution.timeout_at - execution.started_at).total_seconds()
    assert 29 <= window <= 30, window


def test_a_revoked_right_fails_the_queued_execution_without_a_started_event_or_run_time(
    tenant: Any, operator: Any
) -> None:
    before = figures.execution_duration_histograms()
    plan = {"name": "p", "environment": "dev", "steps": [{"name": "n", "type": "noop", "params": {}}]}
    execution = execution_submit(tenant=tenant, actor=operator, plan=plan).execution
    Membership.objects.filter(user=operator).update(role="viewer")
    execution = drain_until_done(execution)
    _assert_never_started(execution)
    assert "rbac_violation" in _types(execution) and "permission denied" in execution.error_message
    assert figures.execution_duration_histograms() == before, "a run that never started has no run time"


def test_raw_updates_of_the_snapshot_and_of_events_are_refused_by_the_database(
    tenant: Any, operator: Any
) -> None:
    from django.db import IntegrityError, transaction

    from execution.services.trail import trail_delete_allowed

    plan = {"name": "p", "environment": "dev", "steps": [{"name": "n", "type": "noop", "params": {}}]}
    execution = execution_submit(tenant=tenant, actor=operator, plan=plan).execution
    event = ExecutionEvent.objects.filter(execution=execution).first()
    assert event is not None
    statements = [
        ("UPDATE executions SET plan_snapshot = '{}'::jsonb WHERE id = %s", execution.pk),
        ("UPDATE executions SET plan_hash = repeat('0', 64) WHERE id = %s", execution.pk),
        ("UPDATE execution_events SET details = '{}'::jsonb WHERE id = %s", event.pk),
        ("DELETE FROM execution_events WHERE id = %s", event.pk),
    ]
    for sql, pk in statements:
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [pk])
    # Other columns still change, and retention may delete (only inside its escape).
    Execution.objects.filter(pk=execution.pk).update(tags=["still-editable"])
    with trail_delete_allowed():
        assert ExecutionEvent.objects.filter(pk=event.pk).delete()[0] == 1


def test_the_plan_check_before_start_is_one_query(tenant: Any, operator: Any) -> None:
    from django.test.utils import CaptureQueriesContext

    from approvals.services.hashing import plan_matches_approval

    plan = {"name": "p", "environment": "staging", "steps": [{"name": "n", "type": "noop", "params": {}}]}
    execution = execution_submit(tenant=tenant, actor=operator, plan=plan, approval_level=1).execution
    with CaptureQueriesContext(connection) as queries:
        assert plan_matches_approval(execution=execution) is None
    assert len(queries) == 1  # the approval's hash; the snapshot is already on the row
