"""The rollups behind /metrics and the summary (monitoring/migrations/0004_rollups.py): exact
counters as work finishes, never lower after a prune, unchanged by a fold, the same rows
from the backfill as from the triggers, windows stitched from minute and hour rows, and no
statement of a scrape or a summary reading the executions history (test_rollups_cost.py)."""

from __future__ import annotations

import bisect
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from execution.enums import ExecutionStatus
from execution.models import Execution, ExecutionStep
from execution.services.retention import retention_prune
from execution.services.transition import transition
from monitoring.models import Rollup, RollupDelta, SlaAlert
from monitoring.selectors import figures
from monitoring.selectors.rollups import bucket_value
from monitoring.selectors.summary import metrics_summary
from monitoring.services.rollups import rollups_fold
from tests.factories import (
    ExecutionFactory,
    ExecutionStepFactory,
    QueueItemFactory,
    TenantFactory,
)
from tests.monitoring.runs import finished_run
from tests.monitoring.test_metrics import scrape, value

pytestmark = pytest.mark.django_db


def _histogram(samples: dict[str, list[Any]], name: str, label: str, value_: str) -> dict[str, float]:
    return {
        s.labels.get("le", s.name.rsplit("_", 1)[-1]): s.value
        for suffix in ("_bucket", "_count", "_sum")
        for s in samples.get(name + suffix, [])
        if s.labels[label] == value_
    }


def _series(samples: dict[str, list[Any]], name: str) -> list[tuple[Any, ...]]:
    return sorted((tuple(sorted(s.labels.items())), s.value) for s in samples[name])


def _expected_histogram(values: list[float], bounds: tuple[float, ...]) -> dict[str, float]:
    expected = {repr(b): float(sum(1 for v in values if v <= b)) for b in bounds}
    expected["+Inf"] = expected["count"] = float(len(values))
    expected["sum"] = pytest.approx(sum(values))
    return expected


def test_counters_are_exact_as_work_finishes_and_never_drop_after_a_prune(
    client: Client, tenant: Any
) -> None:
    before = scrape(client)
    assert "opsconductor_executions_finished_total" not in before
    assert value(before, "opsconductor_sla_violations_total", kind="queue_wait") == 0

    runs = [
        finished_run(tenant, "completed", seconds=0.25, steps=(("noop", 0), ("sleep", 1000))),
        finished_run(tenant, "completed", seconds=7.0, steps=(("sleep", 1001),)),
        finished_run(tenant, "failed", sla="medium", seconds=31.0),
        finished_run(tenant, "timeout", sla="medium", seconds=600.0, late=True),
    ]
    ExecutionFactory(tenant=tenant, status=ExecutionStatus.QUEUED)
    rejected = ExecutionFactory(tenant=tenant)
    transition(rejected, ExecutionStatus.REJECTED)

    def check_against_rows(samples: dict[str, list[Any]]) -> None:
        finished = Counter(
            Execution.objects.filter(completed_at__isnull=False).values_list("status", flat=True)
        )
        for status in ("completed", "failed", "timeout", "rejected", "cancelled", "partial"):
            got = value(samples, "opsconductor_executions_finished_total", tenant="acme", status=status)
            assert got == finished[status], status
        assert value(samples, "opsconductor_executions", tenant="acme", status="queued") == 1
        assert value(samples, "opsconductor_executions", tenant="acme", status="running") == 0
        for sla in ("fast", "medium"):
            ran = Execution.objects.filter(
                sla_class=sla, started_at__isnull=False, completed_at__isnull=False
            )
            seconds = [(e.completed_at - e.started_at).total_seconds() for e in ran]
            got = _histogram(samples, "opsconductor_execution_duration_seconds", "sla_class", sla)
            assert got == _expected_histogram(seconds, figures.EXECUTION_BUCKETS), sla
        for step_type in ("noop", "sleep"):
            ms = ExecutionStep.objects.filter(step_type=step_type).values_list("duration_ms", flat=True)
            got = _histogram(samples, "opsconductor_step_duration_seconds", "step_type", step_type)
            assert got == _expected_histogram([m / 1000 for m in ms], figures.STEP_BUCKETS), step_type

    samples = scrape(client)
    check_against_rows(samples)
    assert value(samples, "opsconductor_sla_compliance_ratio", sla_class="medium") == 0.5  # the timeout
    assert value(samples, "opsconductor_sla_compliance_ratio", sla_class="fast") == 1.0

    # More work: every counter grows by exactly what finished. Folding the deltas into the
    # rollups changes nothing a reader sees.
    runs.append(finished_run(tenant, "completed", seconds=0.1, steps=(("noop", 10),)))
    samples = scrape(client)
    check_against_rows(samples)
    assert rollups_fold().folded > 0 and not RollupDelta.objects.exists()
    assert scrape(client) == samples
    assert value(samples, "opsconductor_executions_finished_total", tenant="acme", status="completed") == 3

    # Retention deletes every row of the four oldest: the counters stay where they were.
    Execution.objects.filter(pk__in=[e.pk for e in runs[:4]]).update(
        completed_at=timezone.now() - timedelta(days=40)
    )
    pruned = retention_prune(older_than_days=30, batch_size=2)
    assert pruned.counts["executions"] == 4 and pruned.counts["steps"] == 5
    after = scrape(client)
    for name in (
        "opsconductor_executions_finished_total",
        "opsconductor_execution_duration_seconds_bucket",
        "opsconductor_execution_duration_seconds_count",
        "opsconductor_execution_duration_seconds_sum",
        "opsconductor_step_duration_seconds_bucket",
        "opsconductor_step_duration_seconds_count",
        "opsconductor_step_duration_seconds_sum",
    ):
        assert _series(after, name) == _series(samples, name), name
    assert value(after, "opsconductor_executions", tenant="acme", status="queued") == 1


def test_an_alert_counts_once_whether_it_comes_before_or_after_the_end(client: Client, tenant: Any) -> None:
    def alert(execution: Execution, kind: str = "execution_timeout") -> None:
        SlaAlert.objects.create(
            violation_key=f"{kind}:{execution.execution_id}",
            kind=kind,
            execution=execution,
            tenant=tenant,
            sla_class=execution.sla_class,
            limit_seconds=1,
            observed_seconds=2,
        )

    met = finished_run(tenant, "completed")
    late_alert = finished_run(tenant, "completed")
    compliance = metrics_summary(window=timedelta(hours=1), tenant_ids=None)["sla"]["compliance"]["fast"]
    assert (compliance["ended"], compliance["compliant"]) == (2, 2)

    alert(late_alert)  # raised after it ended (the sweep raced the finish)
    alert(late_alert, "queue_wait")  # a second alert: still one miss
    running = ExecutionFactory(tenant=tenant, status=ExecutionStatus.RUNNING, started_at=timezone.now())
    alert(running)  # raised while it runs: a miss when it ends
    QueueItemFactory(execution=running, status="processing", dequeued_at=running.started_at)
    transition(running, ExecutionStatus.COMPLETED, expected_from=ExecutionStatus.RUNNING)

    summary = metrics_summary(window=timedelta(hours=1), tenant_ids=None)
    assert summary["sla"]["compliance"]["fast"] == {"ended": 3, "compliant": 1, "ratio": 1 / 3}
    assert summary["sla"]["violations"] == {"execution_timeout": 2, "queue_wait": 1}
    samples = scrape(client)
    assert value(samples, "opsconductor_sla_violations_total", kind="execution_timeout") == 2
    assert value(samples, "opsconductor_sla_compliance_ratio", sla_class="all") == pytest.approx(1 / 3)
    assert met.pk  # the one that met its SLA


def _rollups() -> list[tuple[Any, ...]]:
    keys = ("grain", "period", "tenant_id", "kind", "label", "status", "bucket", "n")
    return sorted((*row[:-1], round(row[-1], 9)) for row in Rollup.objects.values_list(*keys, "total"))


def test_the_backfill_computes_the_rows_the_triggers_wrote(tenant: Any, other_tenant: Any) -> None:
    finished_run(tenant, "completed", seconds=0.003, steps=(("noop", 0), ("http", 250)))
    finished_run(tenant, "failed", sla="long", seconds=95.0, wait=0.0)
    finished_run(tenant, "timeout", sla="medium", seconds=1800.0, late=True)
    finished_run(other_tenant, "partial", seconds=12.5, steps=(("sql", 30_000),))
    alerted = finished_run(other_tenant, "completed")
    SlaAlert.objects.create(
        violation_key="queue_wait:x:1",
        kind="queue_wait",
        execution=alerted,
        tenant=other_tenant,
        sla_class="fast",
        limit_seconds=10,
        observed_seconds=11,
    )
    cancelled = ExecutionFactory(tenant=tenant, status=ExecutionStatus.QUEUED)
    transition(cancelled, ExecutionStatus.CANCELLED)
    rollups_fold()
    written = _rollups()
    assert {row[3] for row in written} == {"execution", "sla_miss", "step", "queue_wait", "sla_alert"}
    assert {row[0] for row in written} == {"m", "h", "a"}

    Rollup.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute("SELECT monitoring_rollups_backfill()")
    assert _rollups() == written and not RollupDelta.objects.exists()


def test_the_triggers_file_durations_under_the_python_bounds_and_buckets(tenant: Any) -> None:
    now = timezone.now()
    run_times = list(figures.EXECUTION_BUCKETS) + [b + 0.001 for b in figures.EXECUTION_BUCKETS]
    for seconds in run_times:
        ExecutionFactory(
            tenant=tenant,
            status=ExecutionStatus.COMPLETED,
            started_at=now - timedelta(seconds=seconds),
            completed_at=now,
        )
    step_ms = [round(b * 1000) for b in figures.STEP_BUCKETS] + [
        round(b * 1000) + 1 for b in figures.STEP_BUCKETS
    ]
    execution = ExecutionFactory(tenant=tenant, status=ExecutionStatus.RUNNING)
    for index, ms in enumerate(step_ms):
        ExecutionStepFactory(
            execution=execution, step_index=index, step_type="noop", completed_at=now, duration_ms=ms
        )

    def cumulative(values: list[float], bounds: tuple[float, ...]) -> list[tuple[float, int]]:
        return [(b, bisect.bisect_right(sorted(values), b)) for b in bounds]

    runs = figures.execution_duration_histograms()["fast"]
    assert runs.buckets == cumulative(run_times, figures.EXECUTION_BUCKETS)
    steps = figures.step_duration_histograms()["noop"]
    assert steps.buckets == cumulative([ms / 1000 for ms in step_ms], figures.STEP_BUCKETS)

    # The log buckets: SQL files each value where the Python side says its bucket lies.
    with connection.cursor() as cursor:
        for seconds in (0.0, 0.0009, 0.001, 0.0123, 0.5, 1.0, 2.5, 59.9, 3600.0, 86400.0 * 30):
            cursor.execute("SELECT monitoring_log_bucket(%s)", [seconds])
            bucket = cursor.fetchone()[0]
            middle = bucket_value(bucket)
            if seconds < 0.001:
                assert (bucket, middle) == (0, 0.0)
            else:
                assert abs(middle / seconds - 1) <= 2 ** (1 / 32) - 1, seconds
            cursor.execute("SELECT monitoring_log_bucket(%s)", [middle or 0.0])
            assert cursor.fetchone()[0] == bucket


def test_windows_count_each_end_once_from_their_first_whole_minute_or_hour(tenant: Any) -> None:
    now = timezone.now()
    ages = {
        "5m": timedelta(minutes=5),
        "50m": timedelta(minutes=50),
        "70m": timedelta(minutes=70),
        "3h": timedelta(hours=3),
        "30h": timedelta(hours=30),
        "10d": timedelta(days=10),
        "100d": timedelta(days=100),
    }
    for age in ages.values():
        ExecutionFactory(
            tenant=tenant,
            status=ExecutionStatus.COMPLETED,
            started_at=now - age - timedelta(seconds=1),
            completed_at=now - age,
        )
    ExecutionFactory(
        tenant=TenantFactory(slug="elsewhere"),
        status=ExecutionStatus.FAILED,
        started_at=now - timedelta(minutes=6),
        completed_at=now - timedelta(minutes=5),
    )
    expected = {
        timedelta(minutes=15): 1,
        timedelta(hours=1): 2,
        timedelta(hours=2): 3,
        timedelta(hours=6): 4,
        timedelta(days=1): 4,
        timedelta(days=2): 5,
        timedelta(days=30): 6,
        timedelta(days=90): 6,
    }
    for window, n in expected.items():
        summary = metrics_summary(window=window, tenant_ids=[tenant.pk])
        assert summary["executions"]["ended"] == n, window
        assert summary["duration_seconds"]["count"] == n and summary["duration_seconds"]["mean"] == 1.0
        # The window starts on its first whole minute (whole hour beyond a day).
        since = datetime.fromisoformat(summary["since"])
        whole = timedelta(hours=1) if window > timedelta(days=1) else timedelta(minutes=1)
        assert since.timestamp() % whole.total_seconds() == 0
        assert now - window - whole < since <= timezone.now() - window
    assert metrics_summary(window=timedelta(minutes=15), tenant_ids=None)["executions"]["ended"] == 2

    # The fold moves the deltas and trims what no window reads: the answers and the all-time
    # counts stay.
    answers = {w: metrics_summary(window=w, tenant_ids=[tenant.pk])["executions"] for w in expected}
    totals = figures.executions_finished(), figures.execution_duration_histograms()
    assert rollups_fold().trimmed == 2 + 1  # the 10d and 100d minute rows, the 100d hour row
    assert {w: metrics_summary(window=w, tenant_ids=[tenant.pk])["executions"] for w in expected} == answers
    assert (figures.executions_finished(), figures.execution_duration_histograms()) == totals
