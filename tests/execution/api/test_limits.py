"""Size limits, the Idempotency-Key header over HTTP, and tenant-scoped asset lookups (docs/contract.md#submission)."""

from __future__ import annotations

from typing import Any

import pytest

from execution.models import AuditLog, Execution, ExecutionEvent
from tests.execution.api.conftest import client_for, noop_body
from tests.factories import AssetFactory

URL = "/api/v1/executions/"


def _paths(answer: Any) -> list[str]:
    return [e["path"] for e in answer.json()["errors"]]


@pytest.mark.django_db
def test_more_than_200_steps_is_refused_at_plan_steps_and_nothing_is_stored(operator: Any) -> None:
    body = noop_body()
    body["plan"]["steps"] = [{"name": f"s{i}", "type": "noop", "params": {}} for i in range(201)]
    answer = client_for(operator).post(URL, body, format="json")
    assert answer.status_code == 400
    assert "plan.steps" in _paths(answer)
    assert not Execution.objects.exists() and not ExecutionEvent.objects.exists()


@pytest.mark.django_db
def test_exactly_200_steps_is_accepted(operator: Any) -> None:
    body = noop_body()
    body["plan"]["steps"] = [{"name": f"s{i}", "type": "noop", "params": {}} for i in range(200)]
    answer = client_for(operator).post(URL, body, format="json")
    assert answer.status_code == 202, answer.json()
    assert Execution.objects.get().steps.count() == 200


@pytest.mark.django_db
def test_a_plan_over_256_kb_is_refused_at_plan(operator: Any) -> None:
    body = noop_body()
    big = "x" * 4000
    body["plan"]["steps"] = [
        {"name": f"s{i}", "type": "noop", "params": {"blob": big}} for i in range(70)
    ]  # ~280 KB
    answer = client_for(operator).post(URL, body, format="json")
    assert answer.status_code == 400
    assert "plan" in _paths(answer)
    assert not Execution.objects.exists()


@pytest.mark.django_db
def test_overlong_strings_name_their_field(operator: Any) -> None:
    body = noop_body(name="n" * 201)
    body["plan"]["steps"][0]["name"] = "s" * 201
    body["trace_id"] = "t" * 129
    answer = client_for(operator).post(URL, body, format="json")
    assert answer.status_code == 400
    assert {"plan.name", "plan.steps[0].name", "trace_id"} <= set(_paths(answer))


@pytest.mark.django_db
def test_idempotency_key_header_over_http_replays_its_plan_and_refuses_another(operator: Any) -> None:
    client = client_for(operator)
    first = client.post(
        URL, noop_body(level=1, name="one"), format="json", HTTP_IDEMPOTENCY_KEY="change-4711"
    )
    assert first.status_code == 202
    same = client.post(URL, noop_body(level=1, name="one"), format="json", HTTP_IDEMPOTENCY_KEY="change-4711")
    assert same.status_code == 200 and same["Idempotent-Replay"] == "true"
    assert same.json()["execution_id"] == first.json()["execution_id"]
    again = client.post(
        URL, noop_body(level=1, name="two"), format="json", HTTP_IDEMPOTENCY_KEY="change-4711"
    )
    assert again.status_code == 422, again.content
    assert "Idempotent-Replay" not in again
    assert again.json()["reason"] == "idempotency_key_reused"
    assert again.json()["execution_id"] == first.json()["execution_id"]
    assert first.json()["execution_id"] in again.json()["detail"]
    other = client.post(
        URL, noop_body(level=1, name="one"), format="json", HTTP_IDEMPOTENCY_KEY="change-4712"
    )
    assert other.status_code == 202 and other.json()["execution_id"] != first.json()["execution_id"]
    assert Execution.objects.count() == 2


@pytest.mark.django_db
def test_same_plan_from_two_actors_is_two_executions(operator: Any, deployer: Any) -> None:
    a = client_for(operator).post(URL, noop_body(level=1), format="json")
    b = client_for(deployer).post(URL, noop_body(level=1), format="json")
    assert a.status_code == b.status_code == 202
    assert a.json()["execution_id"] != b.json()["execution_id"]


@pytest.mark.django_db
def test_another_tenants_asset_is_unknown_here(operator: Any, other_tenant: Any) -> None:
    foreign: Any = AssetFactory(tenant=other_tenant, hostname="their-db")
    body = noop_body()
    body["plan"]["steps"] = [
        {
            "name": "by id",
            "type": "command",
            "target": {"asset_id": foreign.pk},
            "params": {"command": "true"},
        },
        {
            "name": "by name",
            "type": "command",
            "target": {"hostname": "their-db"},
            "params": {"command": "true"},
        },
    ]
    answer = client_for(operator).post(URL, body, format="json")
    assert answer.status_code == 400
    assert set(_paths(answer)) == {"plan.steps[0].target.asset_id", "plan.steps[1].target.hostname"}
    assert not Execution.objects.exists()


@pytest.mark.django_db
def test_unknown_tenant_answers_like_a_foreign_one_with_an_audit_row(
    operator: Any, other_tenant: Any
) -> None:
    client = client_for(operator)
    for slug in ("no-such-tenant", "other"):
        body = noop_body()
        body["tenant"] = slug
        answer = client.post(URL, body, format="json")
        assert answer.status_code == 403
        assert answer.json()["reason"] == f"not a member of tenant {slug!r}"
    assert AuditLog.objects.filter(event_type="rbac_violation", actor=operator).count() == 2
    assert not Execution.objects.exists()
