"""``GET /api/v1/metrics/summary``: figures match a direct computation over the same rows.

Percentiles are read from log-spaced buckets (monitoring/selectors/rollups.py): they equal
percentile_cont over the values taken as their bucket's middle, and are within 2.2% of the
exact figure."""

from __future__ import annotations

import math
import random
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from execution.enums import ExecutionStatus, Role
from tests.factories import (
    ExecutionFactory,
    ExecutionStepFactory,
    MembershipFactory,
    QueueItemFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def percentile(values: list[float], p: float) -> float:
    """Linear interpolation between closest ranks (= PostgreSQL's percentile_cont)."""
    ordered = sorted(values)
    position = p * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def bucket_middle(seconds: float) -> float:
    """The value monitoring_log_bucket() files ``seconds`` under: 0 below 1 ms, else the
    geometric middle of [2^((i-1)/16), 2^(i/16)) ms."""
    if seconds < 0.001:
        return 0.0
    bucket = 1 + math.floor(16 * math.log2(seconds * 1000))
    return 0.001 * 2 ** ((bucket - 0.5) / 16)


def _ended(tenant: Any, status: str, seconds: float, *, ago: float = 60.0) -> Any:
    completed = timezone.now() - timedelta(seconds=ago)
    return ExecutionFactory(
        tenant=tenant,
        status=status,
        started_at=completed - timedelta(seconds=seconds),
        completed_at=completed,
    )


@pytest.fixture
def api(operator: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(operator)
    return client


def test_percentiles_rates_and_step_types_match_direct_computation(api: APIClient, tenant: Any) -> None:
    rng = random.Random(8)
    durations: list[float] = []
    statuses = {"completed": 0, "failed": 0, "timeout": 0, "partial": 0, "cancelled": 0}
    step_durations: dict[str, list[float]] = {"command": [], "http": []}
    queue_times: list[float] = []
    for _ in range(37):
        status = rng.choice(["completed"] * 6 + ["failed", "timeout", "partial", "cancelled"])
        seconds = round(rng.uniform(0.05, 90.0), 3)
        execution = _ended(tenant, status, seconds)
        durations.append(seconds)
        statuses[status] += 1
        for index, step_type in enumerate(("command", "http")):
            ms = rng.randint(5, 20000)
            ExecutionStepFactory(
                execution=execution,
                step_index=index,
                step_type=step_type,
                duration_ms=ms,
                completed_at=timezone.now() - timedelta(seconds=61),
            )
            step_durations[step_type].append(ms / 1000)
        item = QueueItemFactory(execution=execution, status="processing")
        wait = round(rng.uniform(0.0, 15.0), 3)
        item.available_at = item.enqueued_at - timedelta(seconds=1)  # claimable since enqueued
        item.dequeued_at = item.enqueued_at + timedelta(seconds=wait)
        item.save()
        item.status = "completed"  # the claim ended: its queue time counts
        item.save()
        queue_times.append(wait)
    # Outside the window, and another tenant's row: both left out.
    _ended(tenant, "completed", 999.0, ago=7200)
    _ended(ExecutionFactory().tenant, "failed", 555.0)
    ExecutionFactory(tenant=tenant, status=ExecutionStatus.RUNNING, started_at=timezone.now())

    response = api.get("/api/v1/metrics/summary", {"window": "1h"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["window_seconds"] == 3600
    assert body["tenants"] == ["acme"]

    ended = sum(statuses.values())
    assert body["executions"]["ended"] == ended == 37
    assert body["executions"]["by_status"] == statuses
    assert body["executions"]["success_rate"] == round(statuses["completed"] / ended, 4)
    assert body["executions"]["failure_rate"] == round((statuses["failed"] + statuses["timeout"]) / ended, 4)

    def check(got: dict[str, Any], values: list[float]) -> None:
        assert got["count"] == len(values)
        middles = [bucket_middle(v) for v in values]
        for key, p in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
            assert got[key] == pytest.approx(percentile(middles, p), abs=0.001), key
            assert got[key] == pytest.approx(percentile(values, p), rel=0.022, abs=0.001), key
        assert got["mean"] == pytest.approx(sum(values) / len(values), abs=0.001)

    check(body["duration_seconds"], durations)
    assert set(body["step_duration_seconds"]) == {"command", "http"}
    for step_type, values in step_durations.items():
        check(body["step_duration_seconds"][step_type], values)
    check(body["queue_time_seconds"], queue_times)

    compliance = body["sla"]["compliance"]["all"]
    assert compliance["ended"] == ended
    assert compliance["compliant"] == ended - statuses["timeout"]


def test_window_is_validated_and_anonymous_is_refused(api: APIClient) -> None:
    assert api.get("/api/v1/metrics/summary", {"window": "forever"}).status_code == 400
    assert APIClient().get("/api/v1/metrics/summary").status_code in (401, 403)


def test_summary_is_scoped_to_the_users_tenants(
    api: APIClient, tenant: Any, other_tenant: Any, outsider: Any
) -> None:
    _ended(other_tenant, "completed", 3.0)
    assert api.get("/api/v1/metrics/summary").json()["executions"]["ended"] == 0
    # Naming another tenant is a 404, never a 403.
    assert api.get("/api/v1/metrics/summary", {"tenant": "other"}).status_code == 404

    mine = APIClient()
    mine.force_authenticate(outsider)
    assert mine.get("/api/v1/metrics/summary", {"tenant": "other"}).json()["executions"]["ended"] == 1

    # A superuser reads figures through memberships like everyone (docs/contract.md#tenant-administration).
    superuser = UserFactory(username="root", is_superuser=True, is_staff=True)
    root = APIClient()
    root.force_authenticate(superuser)
    body = root.get("/api/v1/metrics/summary").json()
    assert body["tenants"] == [] and body["executions"]["ended"] == 0
    assert root.get("/api/v1/metrics/summary", {"tenant": "other"}).status_code == 404
    MembershipFactory(tenant=other_tenant, user=superuser, role=Role.VIEWER)
    body = root.get("/api/v1/metrics/summary").json()
    assert body["tenants"] == ["other"] and body["executions"]["ended"] == 1


def test_queue_time_counts_from_when_the_item_became_claimable(api: APIClient, tenant: Any) -> None:
    execution = _ended(tenant, "completed", 1.0)
    item = QueueItemFactory(execution=execution, status="processing")
    # A retry: enqueued long ago, backed off until 50 s later, claimed 2.5 s after that.
    item.enqueued_at = timezone.now() - timedelta(seconds=100)
    item.available_at = item.enqueued_at + timedelta(seconds=50)
    item.dequeued_at = item.available_at + timedelta(seconds=2.5)
    item.attempt_count = 2
    item.save()
    item.status = "completed"
    item.save()
    queue = api.get("/api/v1/metrics/summary").json()["queue_time_seconds"]
    assert queue["count"] == 1 and queue["mean"] == 2.5
    assert queue["p50"] == pytest.approx(2.5, rel=0.022)
