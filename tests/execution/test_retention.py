"""Retention: ``manage.py prune`` deletes old finished executions in short batches while the
queue keeps working, never touches anything unfinished, and ``--dry-run`` changes nothing."""

from __future__ import annotations

import io
import threading
import time
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection

from execution.enums import ExecutionStatus, QueueStatus
from execution.models import (
    AuditLog,
    DeadLetter,
    DeadLetterArchive,
    Execution,
    ExecutionEvent,
    ExecutionStep,
    QueueItem,
)
from execution.services.retention import CHILD_TABLES
from tests.factories import UserFactory
from tests.support.history import history_seed

pytestmark = pytest.mark.django_db(transaction=True)

OLD_FINISHED = 12_000  # the bench (bench/prune.py) does 200k and 1M


def _counts(tenant: Any) -> dict[str, int]:
    executions = Execution.objects.filter(tenant=tenant)
    return {
        "executions": executions.count(),
        "steps": ExecutionStep.objects.filter(execution__tenant=tenant).count(),
        "events": ExecutionEvent.objects.filter(tenant_id=tenant.pk).count(),
        "queue": QueueItem.objects.filter(execution__tenant=tenant).count(),
        "dlq": DeadLetter.objects.filter(execution__tenant=tenant).count(),
        "unfinished": executions.exclude(
            status__in=["completed", "failed", "cancelled", "timeout", "partial", "rejected"]
        ).count(),
    }


def _keep_the_queue_busy(tenant: Any, actor: Any, stop: threading.Event, report: dict[str, Any]) -> None:
    """Submit, claim, run and finish executions in a loop; waiting > 1 s for any lock fails."""
    from execution.services.queue import queue_enqueue
    from execution.services.transition import transition
    from execution.worker.claim import claim_with_context, hand_back
    from tests.execution.engine.helpers import make_execution

    try:
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '1s'")
        while not stop.is_set():
            execution = make_execution(tenant=tenant, actor=actor, steps=[{"type": "noop"}])
            queue_enqueue(execution=execution)
            claim = claim_with_context(worker_id="retention-test")
            if claim is not None:
                transition(claim.pk, ExecutionStatus.RUNNING)
                transition(claim.pk, ExecutionStatus.COMPLETED)
                hand_back(ctx=claim, status=QueueStatus.COMPLETED, error="", give_back=False)
                report["ran"] += 1
    except DatabaseError as error:  # lock_timeout: a statement waited longer than 1 s
        report["errors"].append(repr(error))
    except Exception as error:
        report["errors"].append(f"unexpected: {error!r}")
    finally:
        connection.close()  # this thread's own connection


def test_prune_deletes_old_finished_executions_in_batches_while_the_queue_keeps_working(
    tenant: Any,
) -> None:
    actor = UserFactory(username="history-actor")
    history_seed(tenant_id=tenant.pk, actor_id=actor.pk, rows=OLD_FINISHED // 2, age_days=(31, 400))
    history_seed(
        tenant_id=tenant.pk, actor_id=actor.pk, rows=OLD_FINISHED // 2, age_days=(31, 400), status="failed"
    )
    history_seed(tenant_id=tenant.pk, actor_id=actor.pk, rows=300, age_days=(1, 29))  # recent: kept
    for status in ("queued", "running", "pending_approval", "approved"):  # old but unfinished: kept
        history_seed(tenant_id=tenant.pk, actor_id=actor.pk, rows=25, age_days=(60, 90), status=status)
    # Even with an old end stamp (a requeued dead letter), an unfinished execution stays.
    Execution.objects.filter(status="queued").update(completed_at="2020-01-01T00:00:00Z")
    # The product's own guard (migration 0007): events are deleted only inside retention.
    with connection.cursor() as cursor, pytest.raises(DatabaseError, match="execution_events is append-only"):
        cursor.execute("DELETE FROM execution_events WHERE id = (SELECT min(id) FROM execution_events)")
    old_dead_letters = DeadLetter.objects.count()
    assert old_dead_letters > 0

    before = _counts(tenant)
    out = io.StringIO()
    call_command("prune", "--older-than", "30", "--dry-run", stdout=out)
    assert _counts(tenant) == before, "--dry-run changed something"
    assert f"would delete {OLD_FINISHED} executions" in out.getvalue(), out.getvalue()
    assert f"{2 * OLD_FINISHED} events" in out.getvalue()

    stop, report = threading.Event(), {"ran": 0, "errors": []}
    busy = threading.Thread(target=_keep_the_queue_busy, args=(tenant, actor, stop, report))
    busy.start()
    try:
        time.sleep(0.5)
        out = io.StringIO()
        call_command("prune", "--older-than", "30", "--batch", "500", stdout=out)
    finally:
        stop.set()
        busy.join(60)
    assert report["errors"] == [], report["errors"]
    assert report["ran"] > 0
    summary = out.getvalue()
    print(summary, f"(meanwhile {report['ran']} executions ran)")
    assert f"deleted {OLD_FINISHED} executions" in summary and "0 skipped" in summary, summary

    after = _counts(tenant)
    new = report["ran"]
    assert after["executions"] == 300 + 100 + new
    assert after["unfinished"] == before["unfinished"] == 100
    assert after["steps"] == 300 + 100 + new
    assert after["queue"] == 300 + 100 + new
    assert after["dlq"] == 0 and DeadLetterArchive.objects.count() == old_dead_letters
    assert Execution.objects.filter(status="queued", completed_at="2020-01-01T00:00:00Z").count() == 25
    audit = AuditLog.objects.filter(event_type="retention_prune").latest("id")
    assert audit.details["counts"]["executions"] == OLD_FINISHED


def test_prune_knows_every_table_that_refers_to_executions() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT DISTINCT c.conrelid::regclass::text FROM pg_constraint c
            WHERE c.contype = 'f' AND c.confrelid = 'executions'::regclass AND c.conrelid <> c.confrelid
            """
        )
        referring = {row[0] for row in cursor.fetchall()}
    assert referring == CHILD_TABLES, "a new table refers to executions: prune must delete its rows"


def test_bad_arguments_are_a_one_line_error_and_change_nothing(tenant: Any) -> None:
    actor = UserFactory(username="history-actor")
    history_seed(tenant_id=tenant.pk, actor_id=actor.pk, rows=10, age_days=(100, 200))
    for args in (["--older-than", "0"], ["--older-than", "30", "--batch", "0"]):
        with pytest.raises(CommandError, match="must be at least"):
            call_command("prune", *args)
    assert Execution.objects.count() == 10


def test_the_daily_task_keeps_everything_when_retention_days_is_0(tenant: Any, settings: Any) -> None:
    from execution.tasks import prune

    actor = UserFactory(username="history-actor")
    history_seed(tenant_id=tenant.pk, actor_id=actor.pk, rows=10, age_days=(100, 200))
    settings.RETENTION_DAYS = 0
    assert "nothing pruned" in prune()
    assert Execution.objects.count() == 10
    settings.RETENTION_DAYS = 90
    assert "deleted 10 executions" in prune()
    assert Execution.objects.count() == 0
