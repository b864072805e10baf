"""What the rollups cost: no statement of a scrape or a summary reads the executions history
(EXPLAIN, rows read before and after adding it), and a fold never waits for a writer."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from execution.enums import ExecutionStatus
from execution.models import Execution
from monitoring.metrics import metrics_render
from monitoring.models import SlaAlert
from monitoring.selectors import figures
from monitoring.selectors.summary import metrics_summary
from monitoring.services.rollups import LOCK_CLASS, rollups_fold
from tests.factories import (
    ApprovalFactory,
    DeadLetterFactory,
    ExecutionFactory,
    QueueItemFactory,
)
from tests.monitoring.runs import finished_run

pytestmark = pytest.mark.django_db

HISTORY_TABLES = {
    "executions",
    "execution_steps",
    "execution_queue",
    "execution_events",
    "sla_alerts",
    "execution_dlq",
    "approvals",
}


def _rows_read(statements: list[str]) -> list[tuple[str, int]]:
    """Rows each statement reads from the history tables (EXPLAIN ANALYZE, index scans only
    where an index applies): returned rows plus those a filter or recheck dropped."""

    def walk(node: dict[str, Any], sql: str) -> int:
        rows = 0
        if node.get("Relation Name") in HISTORY_TABLES:
            assert node["Node Type"] != "Seq Scan", (node["Relation Name"], sql)
            rows = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
            rows += node.get("Rows Removed by Index Recheck", 0)
            rows *= node["Actual Loops"]
        return rows + sum(walk(child, sql) for child in node.get("Plans", []))

    read = []
    with connection.cursor() as cursor:
        analyse(cursor)
        cursor.execute("SET LOCAL enable_seqscan = off")
        for sql in statements:
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)
            read.append((sql[:60], walk(cursor.fetchone()[0][0]["Plan"], sql)))
    return read


def analyse(cursor: Any) -> None:
    """Statistics of what the test wrote, so the planner's choice depends on the rows, not on
    when autovacuum last looked. ANALYZE sees this transaction's own rows, and the lock it
    takes is held to the end of the test: autovacuum cannot replace these statistics with
    those of the committed (empty) tables meanwhile. A plan chosen from never-gathered
    statistics read 45 rows instead of 5 once (a fresh clone's CI run)."""
    cursor.execute("ANALYZE")


def _scrape_statements(tenant: Any) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        metrics_render()
        for window in (timedelta(hours=1), timedelta(days=7)):
            metrics_summary(window=window, tenant_ids=None)
            metrics_summary(window=window, tenant_ids=[tenant.pk])
    return [q["sql"] for q in captured.captured_queries]


def test_a_scrape_and_a_summary_read_no_history(tenant: Any) -> None:
    # The current state: what the gauges count.
    ExecutionFactory(tenant=tenant, status=ExecutionStatus.QUEUED)
    QueueItemFactory(execution=ExecutionFactory(tenant=tenant, status=ExecutionStatus.QUEUED))
    QueueItemFactory(status="processing", execution=ExecutionFactory(tenant=tenant, status="running"))
    ApprovalFactory(execution=ExecutionFactory(tenant=tenant))
    DeadLetterFactory(execution=ExecutionFactory(tenant=tenant, status=ExecutionStatus.FAILED))
    before = _rows_read(_scrape_statements(tenant))

    # History: finished executions, recent and old, with steps, closed items, alerts, dead
    # letters archived, approvals decided.
    now = timezone.now()
    for i in range(40):
        ended = finished_run(
            tenant, ["completed", "failed", "partial"][i % 3], seconds=1 + i, steps=(("noop", i),) * 2
        )
        if i % 2:
            Execution.objects.filter(pk=ended.pk).update(completed_at=now - timedelta(days=3, minutes=i))
        if i % 5 == 0:
            SlaAlert.objects.create(
                violation_key=f"k{i}",
                kind="queue_wait",
                execution=ended,
                tenant=tenant,
                sla_class="fast",
                limit_seconds=1,
                observed_seconds=2,
            )
            DeadLetterFactory(execution=ended, archived=True)
            ApprovalFactory(execution=ended, state="approved")
    after = _rows_read(_scrape_statements(tenant))
    assert after == before


@pytest.mark.django_db(transaction=True)
def test_a_fold_never_waits_for_a_writer_and_a_second_fold_steps_aside(tenant: Any) -> None:
    ended = timezone.now().replace(second=30, microsecond=0)

    def finished() -> None:
        ExecutionFactory(
            tenant=tenant,
            status=ExecutionStatus.COMPLETED,
            started_at=ended - timedelta(seconds=2),
            completed_at=ended,
        )

    holding, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        """Records one end, then a second one in a transaction left open: its delta rows
        (this backend's, the same keys) stay locked until released."""
        try:
            finished()
            with transaction.atomic():
                finished()
                holding.set()
                release.wait(30)
        except BaseException as error:  # reported by the test thread
            errors.append(error)
            holding.set()
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(30)
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = '10s'")  # a fold that waited would fail here
        assert rollups_fold().folded == 0  # the only deltas are locked by the writer: left alone
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s, 0)", [LOCK_CLASS])
            other = threading.Thread(target=lambda: (results.append(rollups_fold()), connection.close()))
            results: list[Any] = []
            other.start()
            other.join(30)
        assert results and results[0].skipped
    finally:
        release.set()
        thread.join(30)
    assert not errors, errors
    assert rollups_fold().folded == 2  # the minute row and the all-time row, two ends each
    assert figures.executions_finished() == {
        ("acme", status): 2 if status == "completed" else 0 for status in figures.FINISHED
    }
