"""/metrics: Prometheus text parsed by prometheus-client's own parser, counts = the database."""

from __future__ import annotations

import subprocess
from collections import Counter
from typing import Any

import pytest
from django.db.models import Count
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from execution.models import Execution, ExecutionStep, QueueItem
from tests.factories import (
    ApprovalFactory,
    DeadLetterFactory,
    ExecutionLockFactory,
    WorkerHeartbeatFactory,
)
from tests.support.processes import manage_argv, subprocess_env


def scrape(client: Client, **headers: str) -> dict[str, list[Any]]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    samples: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def value(samples: dict[str, list[Any]], name: str, **labels: str) -> float:
    matches = [s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(matches) == 1, (name, labels, matches)
    return float(matches[0])


@pytest.mark.django_db(transaction=True)
def test_counts_match_the_database_after_two_producer_processes(client: Client) -> None:
    python = manage_argv()[0]
    procs = [
        subprocess.Popen(
            [python, "-m", "tests.monitoring.drive_executions", slug, "12"],
            env=subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for slug in ("proc-a", "proc-b")
    ]
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out.decode()[-2000:]

    samples = scrape(client)
    db_counts = {
        (row["tenant__slug"], row["status"]): row["n"]
        for row in Execution.objects.values("tenant__slug", "status").annotate(n=Count("id"))
    }
    assert sum(db_counts.values()) == 24
    # Unfinished ones are a gauge of the rows now, finished ones a counter of the ends.
    exported = {
        (s.labels["tenant"], s.labels["status"]): int(s.value)
        for name in ("opsconductor_executions", "opsconductor_executions_finished_total")
        for s in samples[name]
        if s.value
    }
    assert exported == db_counts
    assert exported[("proc-a", "completed")] == 6 and exported[("proc-b", "failed")] == 3

    ended = Execution.objects.filter(status__in=["completed", "failed"], started_at__isnull=False)
    for sla_class, n in Counter(ended.values_list("sla_class", flat=True)).items():
        assert value(samples, "opsconductor_execution_duration_seconds_count", sla_class=sla_class) == n
        assert (
            value(samples, "opsconductor_execution_duration_seconds_bucket", sla_class=sla_class, le="+Inf")
            == n
        )

    for step_type in ("noop", "sleep"):
        steps = ExecutionStep.objects.filter(step_type=step_type)
        assert (
            value(samples, "opsconductor_step_duration_seconds_count", step_type=step_type) == steps.count()
        )
        within_1s = steps.filter(duration_ms__lte=1000).count()
        assert (
            value(samples, "opsconductor_step_duration_seconds_bucket", step_type=step_type, le="1.0")
            == within_1s
        )
        total = sum(steps.values_list("duration_ms", flat=True)) / 1000
        assert value(samples, "opsconductor_step_duration_seconds_sum", step_type=step_type) == pytest.approx(
            total
        )

    for sla_class in ("fast", "medium", "long"):
        pending = QueueItem.objects.filter(status="pending", sla_class=sla_class).count()
        assert value(samples, "opsconductor_queue_depth", sla_class=sla_class, state="pending") == pending
    # Every fourth execution (odd index: medium) is left pending in the queue.
    assert value(samples, "opsconductor_queue_depth", sla_class="medium", state="pending") == 6
    assert value(samples, "opsconductor_queue_oldest_pending_age_seconds", sla_class="medium") > 0
    assert value(samples, "opsconductor_queue_oldest_pending_age_seconds", sla_class="fast") == 0


@pytest.mark.django_db
def test_dlq_locks_approvals_workers_and_compliance(client: Client, settings: Any) -> None:
    DeadLetterFactory()
    DeadLetterFactory(requeued=True)
    ExecutionLockFactory(is_active=True)
    ExecutionLockFactory(is_active=False)
    ApprovalFactory()
    WorkerHeartbeatFactory()
    samples = scrape(client)
    assert value(samples, "opsconductor_dlq_size", sla_class="fast") == 1
    assert value(samples, "opsconductor_active_locks") == 1
    assert value(samples, "opsconductor_approvals_pending") == 1
    assert value(samples, "opsconductor_workers_alive") == 1
    assert value(samples, "opsconductor_sla_executions_ended", sla_class="all") == 0
    assert not [
        s for s in samples.get("opsconductor_sla_compliance_ratio", []) if s.labels["sla_class"] == "all"
    ]


@pytest.mark.django_db
def test_metrics_token_when_configured(client: Client, settings: Any) -> None:
    settings.MONITORING_METRICS_TOKEN = "scrape-me"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert scrape(client, HTTP_AUTHORIZATION="Bearer scrape-me")["opsconductor_active_locks"]


@pytest.mark.django_db
def test_oldest_pending_age_ignores_items_backing_off(client: Client) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from tests.factories import QueueItemFactory

    long_ago = timezone.now() - timedelta(seconds=300)
    backing_off = QueueItemFactory(available_at=timezone.now() + timedelta(seconds=60))
    backing_off.enqueued_at = long_ago
    backing_off.save()
    samples = scrape(client)
    assert value(samples, "opsconductor_queue_depth", sla_class="fast", state="pending") == 1
    assert value(samples, "opsconductor_queue_oldest_pending_age_seconds", sla_class="fast") == 0

    waiting = QueueItemFactory(available_at=long_ago + timedelta(seconds=200))
    waiting.enqueued_at = long_ago
    waiting.save()
    age = value(scrape(client), "opsconductor_queue_oldest_pending_age_seconds", sla_class="fast")
    # Since it became claimable (~100 s), not since it was first enqueued (300 s); the SQL now()
    # is the test transaction's start, a little before this test's timezone.now().
    assert 90 <= age < 200
