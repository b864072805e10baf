"""Submission over REST: the docs/contract.md#submission example, replay, validation, classification, routing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from approvals.models import Approval
from execution.enums import ExecutionStatus
from execution.models import AuditLog, Execution, ExecutionEvent, ExecutionStep, QueueItem
from tests.execution.api.conftest import client_for, noop_body

pytestmark = pytest.mark.django_db
URL = "/api/v1/executions/"


def test_section5_example_answers_202_and_a_replay_200_with_the_same_id(operator: Any, body: dict) -> None:
    client = client_for(operator)
    first = client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="change-4711")
    assert first.status_code == 202, first.content
    data = first.json()
    assert data["status"] == "pending_approval"
    assert data["execution_mode"] == "background"
    assert data["sla_class"] == "medium"
    assert data["action_class"] == "modify"
    assert data["approval_level"] == 1
    assert data["priority"] == 3
    assert [s["index"] for s in data["steps"]] == [0, 1, 2]
    assert [s["type"] for s in data["steps"]] == ["command", "command", "validate"]
    assert data["steps"][1]["target"]["hostname"] == "web-2"
    assert data["approval"]["state"] == "pending" and data["approval"]["votes"] == []
    eid = data["execution_id"]
    assert data["links"] == {
        "self": f"/api/v1/executions/{eid}/",
        "events": f"/api/v1/executions/{eid}/events/",
        "cancel": f"/api/v1/executions/{eid}/cancel/",
        "websocket": f"/ws/executions/{eid}/",
        "page": f"/executions/{eid}/",
    }
    again = client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="change-4711")
    assert again.status_code == 200
    assert again["Idempotent-Replay"] == "true"
    assert again.json()["execution_id"] == eid
    assert Execution.objects.count() == 1
    execution = Execution.objects.get()
    assert execution.plan_hash and Approval.objects.get(execution=execution).plan_hash == execution.plan_hash
    assert ExecutionStep.objects.filter(execution=execution).count() == 3
    assert list(
        ExecutionEvent.objects.filter(execution_id=execution.execution_id).values_list(
            "event_type", flat=True
        )
    ) == [
        "created",
        "approval_requested",
    ]


def test_same_plan_without_header_is_replayed_by_plan_hash(operator: Any, body: dict) -> None:
    client = client_for(operator)
    assert client.post(URL, body, format="json").status_code == 202
    assert client.post(URL, body, format="json").status_code == 200
    body["plan"]["name"] = "another plan"
    assert client.post(URL, body, format="json").status_code == 202
    assert Execution.objects.count() == 2


def test_level0_background_plan_is_approved_by_the_system_and_queued(operator: Any) -> None:
    response = client_for(operator).post(URL, noop_body(), format="json")
    assert response.status_code == 202, response.content
    execution = Execution.objects.get()
    assert execution.status == ExecutionStatus.QUEUED
    assert QueueItem.objects.filter(execution=execution).exists()
    approved = ExecutionEvent.objects.get(execution_id=execution.execution_id, event_type="approved")
    assert approved.actor_type == "system"


def test_policy_minimum_raises_the_approval_level(deployer: Any) -> None:
    body = noop_body(environment="prod", level=0)
    body["plan"]["steps"][0]["action_class"] = "deploy"
    data = client_for(deployer).post(URL, body, format="json").json()
    assert data["approval_level"] == 2 and data["status"] == "pending_approval"


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda b: b["plan"]["steps"][2].update(type="teleport"), "plan.steps[2].type"),
        (
            lambda b: b["plan"]["steps"][0].update(target={"hostname": "nope"}),
            "plan.steps[0].target.hostname",
        ),
        (
            lambda b: b["plan"]["steps"][1].update(target={"asset_id": 999999}),
            "plan.steps[1].target.asset_id",
        ),
        (lambda b: b["plan"].update(environment="moon"), "plan.environment"),
        (lambda b: b["plan"].update(lock_scope="forever"), "plan.lock_scope"),
        (lambda b: b.update(priority=11), "priority"),
        (lambda b: b["plan"]["steps"][0].update(action_class="destroy"), "plan.steps[0].action_class"),
        (
            lambda b: b["plan"]["steps"].append(
                {"name": "q", "type": "sql", "params": {"query": "select 1"}}
            ),
            "plan.steps[3].target",
        ),
        (lambda b: b["plan"].update(steps=[b["plan"]["steps"][2]] * 201), "plan.steps"),
        (lambda b: b["plan"]["steps"][0]["params"].update(command="x" * 300_000), "plan"),
        (lambda b: b["plan"]["steps"][0].update(name="n" * 201), "plan.steps[0].name"),
        (lambda b: b["plan"]["steps"][0]["params"].pop("command"), "plan.steps[0].params.command"),
        # Unknown fields by name, at every level (a typo was ignored: "aproval_level" ran the
        # plan without the approval it asked for; an operator's trial).
        (lambda b: b.update(aproval_level=2), "aproval_level"),
        (lambda b: b["plan"].update(lockscope="step"), "plan.lockscope"),
        (lambda b: b["plan"]["steps"][0].update(acton_class="read"), "plan.steps[0].acton_class"),
        (
            lambda b: b["plan"]["steps"][0].update(target={"hostname": "web-1", "port": 22}),
            "plan.steps[0].target.port",
        ),
    ],
)
def test_invalid_plans_answer_400_with_the_field_path_and_store_nothing(
    operator: Any, body: dict, mutate: Any, path: str
) -> None:
    mutate(body)
    response = client_for(operator).post(URL, body, format="json")
    assert response.status_code == 400, response.content
    assert path in [e["path"] for e in response.json()["errors"]]
    assert Execution.objects.count() == 0 and ExecutionEvent.objects.count() == 0


def test_lock_scope_is_stored_with_the_plan_only_when_given(operator: Any, body: dict) -> None:
    client = client_for(operator)
    body["plan"]["lock_scope"] = "step"
    stepwise = client.post(URL, body, format="json")
    assert stepwise.status_code in (201, 202), stepwise.content
    stored = Execution.objects.get(execution_id=stepwise.json()["execution_id"])
    assert stored.plan_snapshot["lock_scope"] == "step"
    body["plan"].pop("lock_scope")
    body["plan"]["name"] = "without a scope"
    plain = client.post(URL, body, format="json")
    assert "lock_scope" not in Execution.objects.get(execution_id=plain.json()["execution_id"]).plan_snapshot


def test_malformed_json_is_400_and_wrong_content_type_415(operator: Any) -> None:
    client = client_for(operator)
    bad = client.post(URL, data="{not json", content_type="application/json")
    assert bad.status_code == 400 and bad.json()["errors"][0]["path"] == "body"
    form = client.post(URL, data="tenant=acme", content_type="application/x-www-form-urlencoded")
    assert form.status_code == 415
    assert Execution.objects.count() == 0


def test_operator_may_not_submit_to_prod_403_with_reason_and_audit_row(operator: Any) -> None:
    response = client_for(operator).post(URL, noop_body(environment="prod"), format="json")
    assert response.status_code == 403
    assert "prod" in response.json()["reason"]
    assert Execution.objects.count() == 0
    assert AuditLog.objects.filter(event_type="rbac_violation", actor=operator).exists()


def test_foreign_tenant_submission_is_refused_without_revealing_assets(outsider: Any, body: dict) -> None:
    body["plan"]["steps"][0]["target"] = {"hostname": "does-not-exist"}
    response = client_for(outsider).post(URL, body, format="json")
    assert response.status_code == 403
    assert response.json()["reason"] == "not a member of tenant 'acme'"
    unknown = noop_body()
    unknown["tenant"] = "no-such-tenant"
    assert client_for(outsider).post(URL, unknown, format="json").json()["reason"] == (
        "not a member of tenant 'no-such-tenant'"
    )


def test_service_account_submits_on_behalf_of_a_member(tenant: Any, operator: Any) -> None:
    from tests.factories import MembershipFactory, UserFactory

    robot = UserFactory(username="pipeline-bot")
    MembershipFactory(tenant=tenant, user=robot, role="viewer", can_submit_on_behalf=True)
    body = noop_body()
    body["on_behalf_of"] = operator.username
    response = client_for(robot).post(URL, body, format="json")
    assert response.status_code == 202, response.content
    execution = Execution.objects.get()
    assert execution.actor == operator and execution.metadata["submitted_by"] == "pipeline-bot"
    plain = UserFactory(username="not-a-bot")
    MembershipFactory(tenant=tenant, user=plain, role="operator")
    assert client_for(plain).post(URL, body, format="json").status_code == 403


def test_plan_hash_matches_the_stored_snapshot_for_votes(operator: Any) -> None:
    from execution.plans.hashing import plan_hash as _plan_hash

    body = noop_body(level=1)
    body["plan"]["estimated_duration_seconds"] = 1e1
    # 1e16 comes back from jsonb as the integer 10000000000000000 (its canonical JSON differs)
    body["plan"]["steps"][0]["params"] = {"n": 1e2, "big": 1e16, "text": "naïve ✓"}
    assert client_for(operator).post(URL, body, format="json").status_code == 202
    execution = Execution.objects.get()
    assert _plan_hash(execution.plan_snapshot) == execution.plan_hash
    assert Approval.objects.get(execution=execution).plan_hash == execution.plan_hash


def test_responses_are_masked(operator: Any) -> None:
    body = noop_body(level=1)
    body["metadata"] = {"note": "password=hunter2", "api_token": "abc123"}
    body["plan"]["steps"][0]["params"] = {
        "text": "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    }
    client = client_for(operator)
    created = client.post(URL, body, format="json")
    text = created.content.decode()
    assert "hunter2" not in text and "abc123" not in text
    eid = created.json()["execution_id"]
    for path in (f"{URL}{eid}/", f"{URL}{eid}/events/", URL):
        text = client.get(path).content.decode()
        assert "hunter2" not in text and "abc123" not in text and "c2lnbmF0dXJl" not in text


def test_events_after_returns_only_later_events_in_order(operator: Any) -> None:
    client = client_for(operator)
    eid = client.post(URL, noop_body(level=1), format="json").json()["execution_id"]
    page = client.get(f"{URL}{eid}/events/").json()
    ids = [e["id"] for e in page["results"]]
    assert ids == sorted(ids) and [e["type"] for e in page["results"]] == ["created", "approval_requested"]
    rest = client.get(f"{URL}{eid}/events/?after={ids[0]}").json()
    assert [e["id"] for e in rest["results"]] == ids[1:] and rest["last_id"] == ids[-1]
    assert client.get(f"{URL}{eid}/events/?after=x").status_code == 400


def test_list_filters(operator: Any) -> None:
    client = client_for(operator)
    client.post(URL, noop_body(level=1, name="a"), format="json")
    tagged = noop_body(level=1, name="b", environment="staging")
    tagged["tags"] = ["blue"]
    client.post(URL, tagged, format="json")
    assert client.get(f"{URL}?tag=blue").json()["count"] == 1
    assert client.get(f"{URL}?environment=staging").json()["count"] == 1
    assert client.get(f"{URL}?status=pending_approval&limit=1").json()["count"] == 2
    assert client.get(f"{URL}?created_after=2999-01-01T00:00:00Z").json()["count"] == 0
    assert client.get(f"{URL}?status=bogus").status_code == 400


@pytest.mark.parametrize("url", ["/api/v1/executions/", "/api/v1/dlq/", "/api/v1/approvals/"])
@pytest.mark.parametrize("query", ["offset=abc", "limit=-1", "limit=5&limit=6"])
def test_malformed_paging_is_400_naming_the_parameter(operator: Any, url: str, query: str) -> None:
    response = client_for(operator).get(f"{url}?{query}")
    assert response.status_code == 400, response.content
    assert query.split("=")[0] in json.dumps(response.json())


def test_paging_walks_the_list(operator: Any) -> None:
    client = client_for(operator)
    for index in range(3):
        assert client.post(URL, noop_body(name=f"page {index}", level=1), format="json").status_code == 202
    first = client.get(f"{URL}?limit=2").json()
    second = client.get(f"{URL}?limit=2&offset=2").json()
    assert first["count"] == 3 and len(first["results"]) == 2 and len(second["results"]) == 1
    ids = {r["execution_id"] for r in first["results"] + second["results"]}
    assert len(ids) == 3
