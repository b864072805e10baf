"""The execution page's grid of a fleet step's targets (docs/fleet.md "The execution page"):
one cell per target in the order drawn (failed, running, waiting, the rest), a count per status, the
statuses URL the page's script asks while the step runs (the page's read right), and a page
whose queries do not grow with the targets.

The rows' statuses are set in the table here, as the worker's fan-out writes them; the grid
against a real worker cluster is tests/execution/pages/test_browser_fleet_grid.py."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from execution.enums import TargetStatus
from execution.models import Execution, StepTarget
from execution.services.submit import execution_submit
from tests.factories import AssetFactory

pytestmark = pytest.mark.django_db


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _fleet(tenant: Any, operator: Any, count: int) -> Execution:
    for i in range(AssetFactory._meta.model.objects.filter(tenant=tenant).count(), count):
        AssetFactory(tenant=tenant, hostname=f"web-{i:03d}", tags=["web"])
    plan = {
        "name": "rolling restart",
        "environment": "dev",
        "steps": [
            {"name": "look", "type": "noop", "params": {}},
            {"name": "restart", "type": "noop", "targets": {"tags": ["web"]}, "params": {}},
        ],
    }
    return execution_submit(tenant=tenant.slug, actor=operator, plan=plan).execution


def _set(execution: Execution, status: str, *indexes: int) -> None:
    StepTarget.objects.filter(
        execution_id=execution.execution_id, step_index=1, target_index__in=indexes
    ).update(status=status)


def _cells(body: str) -> list[tuple[int, str, str]]:
    """(index, status, hostname) of each cell in the order the page writes them."""
    return [
        (int(i), status, host)
        for i, status, host in re.findall(
            r'<button type="button" class="cell" data-index="(\d+)" data-status="(\w+)" data-host="([^"]*)"',
            body,
        )
    ]


def test_the_grid_draws_every_target_failed_first_then_running_with_a_count_per_status(
    tenant: Any, operator: Any
) -> None:
    execution = _fleet(tenant, operator, 12)
    _set(execution, TargetStatus.COMPLETED, 0, 1, 2, 3)
    _set(execution, TargetStatus.FAILED, 7, 2)
    _set(execution, TargetStatus.RUNNING, 5, 9)
    _set(execution, TargetStatus.TIMEOUT, 11)
    _set(execution, TargetStatus.WAITING, 8)
    body = _client(operator).get(f"/executions/{execution.execution_id}/").content.decode()
    cells = _cells(body)
    assert [(i, s) for i, s, _ in cells] == [
        (2, "failed"),
        (7, "failed"),
        (11, "timeout"),
        (5, "running"),
        (9, "running"),
        (8, "waiting"),
        (0, "completed"),
        (1, "completed"),
        (3, "completed"),
        (4, "pending"),
        (6, "pending"),
        (10, "pending"),
    ]
    assert cells[0][2] == "web-002"
    assert 'title="web-002 · failed"' in body
    # CSS order as drawn: rank x total + index (the script moves changed cells by the same rule)
    assert (
        'data-index="7" data-status="failed" data-host="web-007" title="web-007 · failed" style="order:7"'
        in body
    )
    assert (
        'data-index="4" data-status="pending" data-host="web-004" title="web-004 · pending" style="order:52"'
        in body
    )
    counts = dict(re.findall(r'<span data-count="(\w+)">(\d+)</span>', body))
    assert counts == {
        "all": "12",
        "failed": "2",
        "timeout": "1",
        "running": "2",
        "waiting": "1",
        "pending": "3",
        "completed": "3",
        "cancelled": "0",
        "skipped": "0",
    }
    assert re.search(r'data-filter="cancelled" aria-pressed="false" hidden>', body)  # none: no button
    assert 'id="fleet-1"' in body and 'id="fleet-0"' not in body  # the one fleet step only
    assert '<a href="#fleet-1">12 targets</a>' in body
    assert f'data-statuses-url="/executions/{execution.execution_id}/steps/1/statuses/"' in body
    assert f'data-targets-url="/api/v1/executions/{execution.execution_id}/steps/1/targets/"' in body
    assert "execution/fleet.js" in body


def test_a_plan_without_fleet_steps_has_no_grid_and_no_grid_script(tenant: Any, operator: Any) -> None:
    plan = {"name": "one", "environment": "dev", "steps": [{"name": "look", "type": "noop", "params": {}}]}
    execution = execution_submit(tenant=tenant.slug, actor=operator, plan=plan).execution
    body = _client(operator).get(f"/executions/{execution.execution_id}/").content.decode()
    assert 'class="fleet"' not in body and "fleet.js" not in body
    assert "OpsLive.executionDetailPage(root, [])" in body


def test_the_statuses_url_answers_every_status_by_target_index_to_readers_only(
    tenant: Any, operator: Any, outsider: Any
) -> None:
    execution = _fleet(tenant, operator, 5)
    _set(execution, TargetStatus.RUNNING, 1)
    _set(execution, TargetStatus.FAILED, 3)
    url = f"/executions/{execution.execution_id}/steps/1/statuses/"
    answer = _client(operator).get(url)
    assert answer.status_code == 200
    assert answer.json() == {"statuses": ["pending", "running", "pending", "failed", "pending"]}
    assert _client(operator).get(f"/executions/{execution.execution_id}/steps/0/statuses/").status_code == 404
    assert _client(operator).get(f"/executions/{execution.execution_id}/steps/9/statuses/").status_code == 404
    assert _client(outsider).get(url).status_code == 404  # another tenant's execution is unknown
    assert Client().get(url).status_code == 302  # to the login page


def test_the_page_and_the_statuses_cost_the_same_queries_for_10_and_300_targets(
    tenant: Any, operator: Any
) -> None:
    client = _client(operator)
    small = _fleet(tenant, operator, 10)
    client.get(f"/executions/{small.execution_id}/")  # warm caches
    with CaptureQueriesContext(connection) as few:
        assert client.get(f"/executions/{small.execution_id}/").status_code == 200
    with CaptureQueriesContext(connection) as few_statuses:
        assert client.get(f"/executions/{small.execution_id}/steps/1/statuses/").status_code == 200
    big = _fleet(tenant, operator, 300)
    with CaptureQueriesContext(connection) as many:
        body = client.get(f"/executions/{big.execution_id}/").content.decode()
    with CaptureQueriesContext(connection) as many_statuses:
        assert len(client.get(f"/executions/{big.execution_id}/steps/1/statuses/").json()["statuses"]) == 300
    assert len(_cells(body)) == 300
    assert len(many) == len(few), [q["sql"][:120] for q in many]
    assert len(many_statuses) == len(few_statuses) <= 6, [q["sql"][:120] for q in many_statuses]
    # the grid never reads the outputs (4 KB each): a click fetches one target's
    grid_reads = [q["sql"] for q in many if "execution_step_targets" in q["sql"]]
    assert grid_reads and all('"output"' not in sql for sql in grid_reads), grid_reads
