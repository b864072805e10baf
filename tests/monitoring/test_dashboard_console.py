"""/monitoring/ as an operator uses it: updates in place, a readable histogram, percentiles of
the last attempt, SLA alerts acknowledged (who, when, comment) off the active list."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from execution.enums import ExecutionStatus
from execution.models import AuditLog
from execution.services.transition import transition
from monitoring.charts import histogram_chart
from monitoring.models import SlaAlert
from tests.factories import (
    ApprovalFactory,
    ExecutionFactory,
    GateApprovalFactory,
    QueueItemFactory,
    WorkerHeartbeatFactory,
)

pytestmark = pytest.mark.django_db


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_dashboard_never_reloads_the_whole_page(operator: Any) -> None:
    body = _client(operator).get("/monitoring/").content.decode()
    assert 'http-equiv="refresh"' not in body
    assert 'OpsLive.refreshInPlace("dashboard"' in body and '<div id="dashboard">' in body


def test_the_histogram_has_axes_and_counts() -> None:
    svg = str(histogram_chart([(1.0, 2), (5.0, 7), (10.0, 7)], 9, title="Run time", y_label="executions"))
    assert svg.count('class="axis"') >= 2 + 3  # two axes and the count ticks
    assert '<text class="count"' in svg and ">5</text>" in svg and ">2</text>" in svg  # counts per bucket
    assert "executions" in svg and "9 in all" in svg and "+inf" in svg


def test_the_cards_count_gate_approvals_and_name_worker_clusters(operator: Any, tenant: Any) -> None:
    # A plan parked at a gate step waits for votes like one waiting to start: both are pending
    # approvals, on the page and in /metrics. The live count is of clusters (each runs several
    # worker processes, listed in the workers table), and the card says so.
    ApprovalFactory(execution=ExecutionFactory(tenant=tenant))
    GateApprovalFactory(execution=ExecutionFactory(tenant=tenant, status=ExecutionStatus.PENDING_APPROVAL))
    GateApprovalFactory(execution=ExecutionFactory(tenant=tenant), state="approved")
    WorkerHeartbeatFactory()
    body = _client(operator).get("/monitoring/").content.decode()
    assert '<div class="n">2</div>pending approvals' in body
    assert '<div class="n">1</div>worker clusters alive' in body
    metrics = _client(operator).get("/metrics").content.decode()
    assert "opsconductor_approvals_pending 2.0" in metrics


@pytest.mark.parametrize("path", ["transition", "worker"])
def test_a_requeued_execution_is_timed_from_its_last_attempt(operator: Any, tenant: Any, path: str) -> None:
    now = timezone.now()
    for _ in range(3):
        execution = ExecutionFactory(
            tenant=tenant,
            status=ExecutionStatus.RUNNING,
            started_at=now - timedelta(seconds=400),  # first start, attempts and back-off ago
        )
        claimed = now - timedelta(seconds=20)
        # transition() (reaper, cancel) ends it with the claim still open; the worker's finish
        # statement clears attempt_started_at as it closes the item, and dequeued_at stays.
        QueueItemFactory(
            execution=execution,
            status="processing",
            dequeued_at=claimed,
            attempt_started_at=claimed if path == "transition" else None,
        )
        transition(execution, ExecutionStatus.COMPLETED, expected_from=ExecutionStatus.RUNNING)
    # Each finish is stamped when transition() runs, a little after `now`: 20 s plus that much
    # (0.7 s on a loaded machine), never the 400 s since the first start.
    longest = 20 + (timezone.now() - now).total_seconds() + 0.05
    api = APIClient()
    api.force_authenticate(operator)
    durations = api.get("/api/v1/metrics/summary?window=1h").json()["duration_seconds"]
    # percentiles come from histogram buckets (interpolated: 19.9 for three 20.0 s runs)
    assert 19 <= durations["p95"] <= longest + 1 and 19 <= durations["p99"] <= longest + 1, durations
    page = _client(operator).get("/monitoring/").content.decode()
    card = page.split('id="card-percentiles"')[1].split("</div>")[0]
    shown = [float(v) for v in card.split(">")[-1].split(" / ")]
    assert len(shown) == 3 and all(19 <= value <= longest + 1 for value in shown), card


def _alert(tenant: Any) -> SlaAlert:
    execution = ExecutionFactory(tenant=tenant, status=ExecutionStatus.RUNNING)
    return SlaAlert.objects.create(  # type: ignore[no-any-return]
        violation_key=f"execution_timeout:{execution.execution_id}",
        kind="execution_timeout",
        execution=execution,
        tenant=tenant,
        sla_class="fast",
        limit_seconds=10,
        observed_seconds=42,
        message="past its timeout",
    )


def test_an_acknowledged_alert_leaves_the_active_list(operator: Any, tenant: Any) -> None:
    alert = _alert(tenant)
    client = _client(operator)
    before = client.get("/monitoring/").content.decode()
    assert f'data-alert="{alert.pk}"' in before and '<div class="n">1</div>active SLA alerts' in before
    response = client.post(
        f"/monitoring/alerts/{alert.pk}/acknowledge/", {"comment": "db failover, known"}, follow=True
    )
    body = response.content.decode()
    alert.refresh_from_db()
    assert alert.acknowledged_by == operator and alert.acknowledged_at is not None
    assert alert.acknowledge_comment == "db failover, known"
    assert f'data-alert="{alert.pk}"' not in body and '<div class="n">0</div>active SLA alerts' in body
    acknowledged = body[body.index('<table id="acknowledged">') :]
    assert "olga-operator" in acknowledged and "db failover, known" in acknowledged
    assert AuditLog.objects.filter(event_type="sla_alert_acknowledged", actor=operator).count() == 1
    again = client.post(f"/monitoring/alerts/{alert.pk}/acknowledge/", {"comment": "me too"}, follow=True)
    assert "already acknowledged" in again.content.decode()


def test_viewers_and_other_tenants_cannot_acknowledge(viewer: Any, outsider: Any, tenant: Any) -> None:
    alert = _alert(tenant)
    assert "not yours to acknowledge" in _client(viewer).get("/monitoring/").content.decode()
    assert _client(viewer).post(f"/monitoring/alerts/{alert.pk}/acknowledge/").status_code == 403
    assert _client(outsider).post(f"/monitoring/alerts/{alert.pk}/acknowledge/").status_code == 404
    alert.refresh_from_db()
    assert alert.acknowledged_at is None
