"""/monitoring/ in Debian's chromium: an execution forced past its timeout_at shows one alert."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from execution.enums import ExecutionStatus, Role
from execution.models import ExecutionEvent
from monitoring.models import SlaAlert
from monitoring.tasks import sla_sweep
from tests.factories import ExecutionFactory, MembershipFactory, UserFactory, WorkerHeartbeatFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "pw-for-tests"  # UserFactory's


def log_in(page: Any, base: str, user: Any) -> None:
    page.goto(f"{base}/accounts/login/?next=/monitoring/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/monitoring/")


def test_execution_past_timeout_shows_exactly_one_alert(
    live_server: Any,
    page: Any,
    tenant: Any,
    operator: Any,
    outsider: Any,
) -> None:
    WorkerHeartbeatFactory(worker_id="cluster:web-test:1", hostname="web-test", pid=1)
    now = timezone.now()
    execution = ExecutionFactory(
        tenant=tenant,
        actor=operator,
        status=ExecutionStatus.RUNNING,
        started_at=now - timedelta(seconds=20),
        timeout_at=now - timedelta(seconds=1),  # forced past its timeout
    )
    # Two scheduled runs of the sweeper: the violation alerts once.
    assert sla_sweep() == 1
    assert sla_sweep() == 0
    assert ExecutionEvent.objects.filter(execution=execution, event_type="sla_violation").count() == 1
    assert SlaAlert.objects.count() == 1

    base = live_server.url
    log_in(page, base, operator)
    rows = page.locator("#alerts tr.alert-row")
    assert rows.count() == 1
    row = page.locator(f"#alerts tr[data-execution='{execution.execution_id}']")
    assert row.get_attribute("data-kind") == "execution_timeout"
    assert "running" in row.inner_text()
    assert page.inner_text("#card-alerts .n") == "1"
    assert page.inner_text("#card-workers .n") == "1"
    assert "web-test" in page.inner_text("#workers")
    assert page.locator("svg.chart").count() == 3
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    # Another tenant's member sees no alert of acme.
    page.context.clear_cookies()
    log_in(page, base, outsider)
    assert page.locator("#alerts tr.alert-row").count() == 0
    assert page.inner_text("#card-alerts .n") == "0"


@pytest.mark.django_db
def test_dashboard_needs_staff_or_a_membership(client: Any, tenant: Any) -> None:
    assert client.get("/monitoring/").status_code == 302  # to the login page
    loner = UserFactory(username="loner")
    client.force_login(loner)
    assert client.get("/monitoring/").status_code == 403
    MembershipFactory(tenant=tenant, user=loner, role=Role.VIEWER)
    assert client.get("/monitoring/").status_code == 200


@pytest.mark.django_db
def test_workers_table_lists_live_workers_first(client: Any, tenant: Any, operator: Any) -> None:
    now = timezone.now()
    for i in range(3):
        WorkerHeartbeatFactory(worker_id=f"stopped-{i}", last_seen_at=now, stopped_at=now)
    WorkerHeartbeatFactory(worker_id="old-but-running", last_seen_at=now - timedelta(minutes=10))
    WorkerHeartbeatFactory(worker_id="live-one")
    client.force_login(operator)
    rows = client.get("/monitoring/").context["workers"]
    assert [(r["worker"].worker_id, r["state"]) for r in rows[:2]] == [
        ("live-one", "alive"),
        ("old-but-running", "lost"),
    ]
    assert {r["state"] for r in rows[2:]} == {"stopped"}
