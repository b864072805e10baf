"""A fleet step's targets in the API (docs/fleet.md, docs/api.md): ``steps[i].targets[]`` (the
first 100 inline), ``GET /api/v1/executions/{id}/steps/{i}/targets/?status=`` paginated,
progress counting targets, and a query count that does not grow with the targets."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from execution.enums import ExecutionStatus, TargetStatus
from execution.models import Execution, StepTarget
from execution.worker.runtime import drain
from tests.execution.api.conftest import client_for
from tests.execution.api.test_fleet_submit import fleet_body
from tests.factories import AssetFactory

URL = "/api/v1/executions/"


def _fleet(operator: Any, tenant: Any, count: int, **strategy: Any) -> dict[str, Any]:
    for i in range(count):
        AssetFactory(tenant=tenant, hostname=f"web-{i:03d}", tags=["web"])
    response = client_for(operator).post(
        URL, fleet_body({"tags": ["web"]}, strategy=strategy or None), format="json"
    )
    assert response.status_code == 202, response.content
    return dict(response.json())


@pytest.mark.django_db
def test_the_detail_lists_the_first_targets_and_links_the_rest(operator: Any, tenant: Any) -> None:
    created = _fleet(operator, tenant, 150, batch=50)
    client = client_for(operator)
    body = client.get(f"{URL}{created['execution_id']}/").json()
    step = body["steps"][0]
    assert step["targets_total"] == 150 and len(step["targets"]) == 100
    assert step["targets_by_status"] == {"pending": 150}
    assert [t["batch"] for t in step["targets"][::50]] == [0, 1]
    assert step["targets"][0]["hostname"] == "web-000" and step["targets"][0]["status"] == "pending"
    assert body["progress"]["targets_total"] == 150 and body["progress"]["targets_done"] == 0
    url = step["targets_url"]
    assert url == f"{URL}{created['execution_id']}/steps/0/targets/"
    page = client.get(url, {"limit": 60, "offset": 100}).json()
    assert page["count"] == 150 and [t["index"] for t in page["results"]] == list(range(100, 150))
    assert client.get(url, {"status": "failed"}).json()["count"] == 0
    assert client.get(url, {"status": "pending,failed"}).json()["count"] == 150


@pytest.mark.django_db
def test_bad_filters_and_other_tenants_are_refused(operator: Any, outsider: Any, tenant: Any) -> None:
    created = _fleet(operator, tenant, 3)
    url = f"{URL}{created['execution_id']}/steps/0/targets/"
    client = client_for(operator)
    bad = client.get(url, {"status": "broken"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["path"] == "status"
    assert client.get(url, {"limit": "x"}).status_code == 400
    assert client.get(f"{URL}{created['execution_id']}/steps/5/targets/").status_code == 404
    assert client_for(outsider).get(url).status_code == 404
    # a step index that is no number: a JSON 400 naming it (was the router's HTML 404)
    for index in ("null,null", "-1", "x"):
        answer = client.get(f"{URL}{created['execution_id']}/steps/{index}/targets/")
        assert answer.status_code == 400 and answer.json()["errors"][0]["path"] == "step_index", index


@pytest.mark.django_db
def test_the_detail_costs_the_same_queries_for_10_and_300_targets(
    operator: Any, tenant: Any, other_tenant: Any
) -> None:
    small = _fleet(operator, tenant, 10)
    client = client_for(operator)
    client.get(f"{URL}{small['execution_id']}/")  # warm caches (token, history)
    with CaptureQueriesContext(connection) as few:
        assert client.get(f"{URL}{small['execution_id']}/").status_code == 200
    for i in range(10, 300):
        AssetFactory(tenant=tenant, hostname=f"web-{i:03d}", tags=["web"])
    big = client.post(URL, fleet_body({"tags": ["web"]}), format="json").json()
    with CaptureQueriesContext(connection) as many:
        assert client.get(f"{URL}{big['execution_id']}/").status_code == 200
    assert len(many) == len(few) <= 12, [q["sql"][:120] for q in many]


@pytest.mark.django_db(transaction=True)
def test_a_fleet_of_noops_runs_every_target_and_progress_counts_them(operator: Any, tenant: Any) -> None:
    created = _fleet(operator, tenant, 25, concurrency=5, batch="40%")
    drain(budget_seconds=2)
    execution = Execution.objects.get(execution_id=created["execution_id"])
    assert execution.status == ExecutionStatus.COMPLETED
    rows = StepTarget.objects.filter(execution_id=execution.execution_id)
    assert {r.status for r in rows} == {TargetStatus.COMPLETED} and {r.attempts for r in rows} == {1}
    assert sorted({r.batch for r in rows}) == [0, 1, 2]  # 10, 10, 5
    body = client_for(operator).get(f"{URL}{created['execution_id']}/").json()
    assert body["progress"]["targets_done"] == 25
    assert body["steps"][0]["output"] == {"targets": 25, "completed": 25}
