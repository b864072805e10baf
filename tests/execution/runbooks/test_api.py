"""Runbooks over REST and ``manage.py runbook`` (docs/runbooks.md#rest): create, version,
launch through the one submit service, the same plan through each door, refusals."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import CommandError, call_command

from execution.models import AuditLog, Execution
from execution.runbooks.models import Runbook, RunbookVersion
from tests.execution.api.conftest import client_for
from tests.execution.runbooks.conftest import HEALTH_PARAMETERS, HEALTH_PLAN
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/runbooks/"


def _operator(tenant: Any, name: str) -> Any:
    user = UserFactory(username=name)
    MembershipFactory(tenant=tenant, user=user, role="operator")
    return user


def test_an_admin_creates_a_runbook_and_a_second_version(
    tenant: Any, tenant_admin: Any, web_hosts: Any
) -> None:
    client = client_for(tenant_admin)
    body = {
        "tenant": "acme",
        "slug": "health",
        "name": "Health check",
        "description": "reads only",
        "tags": ["web"],
        "parameters": HEALTH_PARAMETERS,
        "plan": HEALTH_PLAN,
        "min_approval_level": 0,
    }
    created = client.post(URL, body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["version"] == 1 and created.json()["owner"] == tenant_admin.username
    assert client.post(URL, body, format="json").status_code == 409  # the slug is taken
    second = client.post(
        f"{URL}health/versions/",
        {"tenant": "acme", "parameters": HEALTH_PARAMETERS, "plan": HEALTH_PLAN, "min_approval_level": 1},
        format="json",
    )
    assert second.status_code == 201, second.content
    detail = client.get(f"{URL}health/").json()
    assert [v["number"] for v in detail["versions"]] == [2, 1]
    assert [v["min_approval_level"] for v in detail["versions"]] == [1, 0]  # version 1 unchanged
    listed = client.get(URL).json()
    assert [r["slug"] for r in listed["results"]] == ["health"]


def test_a_bad_schema_or_template_is_a_400_naming_the_path(tenant: Any, tenant_admin: Any) -> None:
    client = client_for(tenant_admin)
    body = {
        "tenant": "acme",
        "slug": "bad",
        "name": "Bad",
        "parameters": {"properties": {"n": {"type": "integer", "minimum": "one"}}},
        "plan": HEALTH_PLAN,
    }
    answer = client.post(URL, body, format="json")
    assert answer.status_code == 400
    assert [e["path"] for e in answer.json()["errors"]] == ["parameters.properties.n.minimum"]
    body["parameters"] = {"properties": {"host": {"type": "string"}}}
    body["plan"] = {**HEALTH_PLAN, "environment": "moon"}
    answer = client.post(URL, body, format="json")
    assert answer.status_code == 400
    # params.path etc. are named by the template but not declared; environment is no placeholder
    assert "plan.steps[0].name" in [e["path"] for e in answer.json()["errors"]]
    body["plan"] = {
        **HEALTH_PLAN,
        "environment": "moon",
        "name": "x",
        "steps": [{"name": "n", "type": "noop"}],
    }
    answer = client.post(URL, body, format="json")
    assert [e["path"] for e in answer.json()["errors"]] == ["plan.environment"]
    assert not Runbook.objects.exists()


def test_only_a_tenant_admin_edits(tenant: Any, operator: Any, outsider: Any, health: Runbook) -> None:
    body = {"tenant": "acme", "parameters": HEALTH_PARAMETERS, "plan": HEALTH_PLAN}
    answer = client_for(operator).post(f"{URL}health/versions/", body, format="json")
    assert answer.status_code == 403
    assert client_for(outsider).post(f"{URL}health/versions/", body, format="json").status_code == 404
    assert RunbookVersion.objects.count() == 1
    assert AuditLog.objects.filter(actor=operator, event_type="rbac_violation").exists()


def test_launch_submits_the_rendered_plan_and_records_the_runbook(operator: Any, health: Runbook) -> None:
    answer = client_for(operator).post(
        f"{URL}health/launch/", {"tenant": "acme", "params": {"host": "web-1", "tries": 2}}, format="json"
    )
    assert answer.status_code in (201, 202), answer.content
    data = answer.json()
    assert (data["runbook"], data["runbook_version"]) == ("health", 1)
    assert data["params"] == {
        "host": "web-1",
        "path": "/health",
        "tries": 2,
        "verbose": False,
        "mode": "quick",
    }
    execution = Execution.objects.get(execution_id=data["execution_id"])
    assert execution.plan_snapshot["name"] == "health of web-1"
    assert execution.plan_snapshot["steps"][0]["params"]["message"] == "quick x2 verbose=false"
    assert execution.plan_snapshot["steps"][0]["timeout_seconds"] == 30  # non-strings untouched
    assert execution.runbook == {
        "slug": "health",
        "version": 1,
        "params": data["params"],
        "author_id": health.versions.get(number=1).created_by_id,
    }


def test_a_bad_parameter_is_a_400_naming_it_and_stores_nothing(operator: Any, health: Runbook) -> None:
    answer = client_for(operator).post(
        f"{URL}health/launch/", {"tenant": "acme", "params": {"host": "db-1"}}, format="json"
    )
    assert answer.status_code == 400
    assert [e["path"] for e in answer.json()["errors"]] == ["params.host"]
    with pytest.raises(CommandError, match=r"params\.host"):
        call_command("runbook", "launch", "health", "--user", operator.username, "-p", "host=db-1")
    assert not Execution.objects.exists()


def test_a_viewer_is_refused_at_every_door(viewer: Any, health: Runbook) -> None:
    answer = client_for(viewer).post(
        f"{URL}health/launch/", {"tenant": "acme", "params": {"host": "web-1"}}, format="json"
    )
    assert answer.status_code == 403
    with pytest.raises(CommandError, match="permission denied"):
        call_command("runbook", "launch", "health", "--user", viewer.username, "-p", "host=web-1")
    assert not Execution.objects.exists()
    assert AuditLog.objects.filter(actor=viewer, event_type="rbac_violation").count() == 2


def test_another_tenant_does_not_see_the_runbook(outsider: Any, health: Runbook) -> None:
    client = client_for(outsider)
    assert client.get(f"{URL}health/").status_code == 404
    assert client.get(URL).json()["results"] == []
    answer = client.post(
        f"{URL}health/launch/", {"tenant": "acme", "params": {"host": "web-1"}}, format="json"
    )
    assert answer.status_code == 404
    with pytest.raises(CommandError, match="not found"):
        call_command("runbook", "launch", "health", "--user", outsider.username, "-p", "host=web-1")


def test_rest_and_command_give_the_same_plan_and_hash(tenant: Any, health: Runbook, capsys: Any) -> None:
    rest = client_for(_operator(tenant, "op-rest")).post(
        f"{URL}health/launch/",
        {"tenant": "acme", "params": {"host": "web-2", "tries": 3, "verbose": True}},
        format="json",
    )
    assert rest.status_code in (201, 202), rest.content
    _operator(tenant, "op-cmd")
    call_command(
        "runbook",
        "launch",
        "health",
        "--user",
        "op-cmd",
        "-p",
        "host=web-2",
        "-p",
        "tries=3",
        "-p",
        "verbose=true",
    )
    executions = list(Execution.objects.order_by("id"))
    assert len(executions) == 2
    assert executions[0].plan_snapshot == executions[1].plan_snapshot
    assert executions[0].plan_hash == executions[1].plan_hash == rest.json()["plan_hash"]
    assert executions[1].runbook == executions[0].runbook


def test_a_launch_of_a_level_one_runbook_waits_for_approval(
    tenant: Any, tenant_admin: Any, operator: Any, health: Runbook
) -> None:
    from execution.runbooks.services import runbook_version_add

    runbook_version_add(
        runbook=health,
        actor=tenant_admin,
        parameters=HEALTH_PARAMETERS,
        plan=HEALTH_PLAN,
        min_approval_level=2,
    )
    answer = client_for(operator).post(
        f"{URL}health/launch/", {"tenant": "acme", "params": {"host": "web-1"}}, format="json"
    )
    assert answer.status_code == 202
    assert answer.json()["status"] == "pending_approval" and answer.json()["approval_level"] == 2
    assert answer.json()["runbook_version"] == 2
    older = client_for(operator).post(
        f"{URL}health/launch/", {"tenant": "acme", "params": {"host": "web-1"}, "version": 1}, format="json"
    )
    # The same plan by the same actor is a replay of the pending execution (docs/runbooks.md).
    assert older.status_code == 200 and older["Idempotent-Replay"] == "true"
    assert older.json()["execution_id"] == answer.json()["execution_id"]


def test_the_schema_lists_the_runbook_endpoints(operator: Any) -> None:
    schema = client_for(operator).get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    assert {"/api/v1/runbooks/", "/api/v1/runbooks/{slug}/launch/"} <= set(schema["paths"])


def test_the_author_of_the_launched_version_is_no_second_pair_of_eyes(
    tenant: Any, tenant_admin: Any, operator: Any, health: Runbook
) -> None:
    """A second admin rewrites a runbook that others launch (a trigger, a schedule, an
    operator) and then approves what they wrote: their vote must not count."""
    from execution.runbooks.services import runbook_version_add

    author = UserFactory(username="second-admin")
    MembershipFactory(tenant=tenant, user=author, role="admin")
    runbook_version_add(
        runbook=health, actor=author, parameters=HEALTH_PARAMETERS, plan=HEALTH_PLAN, min_approval_level=2
    )
    launched = client_for(operator).post(
        f"{URL}health/launch/", {"tenant": "acme", "params": {"host": "web-1"}}, format="json"
    )
    assert launched.status_code == 202 and launched.json()["status"] == "pending_approval"
    execution_id = launched.json()["execution_id"]
    refused = client_for(author).post(f"/api/v1/executions/{execution_id}/approve/", {}, format="json")
    assert refused.status_code == 403, refused.content
    assert "author of the runbook version" in refused.json()["detail"]
    # the version-1 author (another admin) still votes: the rule bars a person, not a role
    counted = client_for(tenant_admin).post(f"/api/v1/executions/{execution_id}/approve/", {}, format="json")
    assert counted.status_code == 200, counted.content
