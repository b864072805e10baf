"""Standard changes (docs/approvals.md#standard-changes): a submission matching every field of
an active rule is approved by it at submission (a vote recorded as the rule, an audit row);
a near miss on any one field is not, nor is a plan whose level a change freeze raised."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any

import pytest
from django.utils import timezone

from approvals.models import Approval, ChangeFreeze, StandardChange
from execution.models import AuditLog
from tests.execution.api.conftest import client_for
from tests.factories import AssetFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/executions/"


def body(
    *, name: str = "rotate logs", targets: list[Any] | None = None, action_class: str = ""
) -> dict[str, Any]:
    steps = [
        {"name": f"on {t.hostname}", "type": "noop", "target": {"asset_id": t.pk}} for t in (targets or [])
    ] or [{"name": "nothing", "type": "noop"}]
    if action_class:
        for step in steps:
            step["action_class"] = action_class
    return {
        "tenant": "acme",
        "plan": {"name": name, "environment": "staging", "steps": steps},
        "approval_level": 1,
    }


def rule(tenant: Any, **fields: Any) -> StandardChange:
    values: dict[str, Any] = {
        "name": "log rotation",
        "plan_name_pattern": "rotate .*",
        "environment": "staging",
        "action_class": "read",
        "target_tags": ["web"],
        "max_targets": 2,
        **fields,
    }
    return StandardChange.objects.create(tenant=tenant, **values)


def submit(operator: Any, payload: dict[str, Any]) -> dict[str, Any]:
    answer = client_for(operator).post(URL, payload, format="json")
    assert answer.status_code == 202, answer.content
    return answer.json()  # type: ignore[no-any-return]


def test_a_matching_plan_is_approved_by_the_rule(tenant: Any, operator: Any) -> None:
    standard = rule(tenant)
    web = [AssetFactory(tenant=tenant, tags=["web", "eu"]), AssetFactory(tenant=tenant, tags=["web"])]
    data = submit(operator, body(targets=web))
    assert data["status"] == "queued"
    approval = Approval.objects.get(execution__execution_id=data["execution_id"])
    assert approval.state == "approved"
    vote = approval.votes.get()
    assert vote.voter is None and vote.standard_change == standard
    assert vote.voter_name == "standard change log rotation v1"
    audit = AuditLog.objects.get(event_type="standard_change_applied")
    assert audit.details["execution_id"] == data["execution_id"] and audit.details["version"] == 1
    shown = client_for(operator).get(f"{URL}{data['execution_id']}/").json()
    assert shown["approval"]["votes"][0]["voter"] == "standard change log rotation v1"


def _now_outside() -> tuple[time, time]:
    now = timezone.now()
    return (now + timedelta(hours=1)).time(), (now + timedelta(hours=2)).time()


@pytest.mark.parametrize(
    ("field", "rule_fields", "plan_fields"),
    [
        ("plan name", {"plan_name_pattern": "restart .*"}, {}),
        ("environment", {"environment": "dev"}, {}),
        ("action class", {}, {"action_class": "modify"}),
        ("target tags", {"target_tags": ["db"]}, {}),
        ("max targets", {"max_targets": 1}, {}),
        ("time window", {"window_start": _now_outside()[0], "window_end": _now_outside()[1]}, {}),
        ("runbook", {"plan_name_pattern": "", "runbook_slug": "rotate"}, {}),
        ("inactive", {"active": False}, {}),
    ],
)
def test_a_near_miss_on_any_field_is_not_approved(
    tenant: Any, operator: Any, field: str, rule_fields: dict[str, Any], plan_fields: dict[str, Any]
) -> None:
    rule(tenant, **rule_fields)
    web = [AssetFactory(tenant=tenant, tags=["web"]), AssetFactory(tenant=tenant, tags=["web"])]
    data = submit(operator, body(targets=web, **plan_fields))
    assert data["status"] == "pending_approval", field
    assert not Approval.objects.get(execution__execution_id=data["execution_id"]).votes.exists()
    assert not AuditLog.objects.filter(event_type="standard_change_applied").exists()


def test_a_level_raised_by_a_freeze_is_never_approved_by_a_rule(tenant: Any, operator: Any) -> None:
    rule(tenant)
    now = timezone.now()
    ChangeFreeze.objects.create(
        tenant=tenant,
        environment="staging",
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(hours=1),
        effect="raise",
        approval_level=1,
        reason="release week",
    )
    data = submit(operator, body(targets=[AssetFactory(tenant=tenant, tags=["web"])]))
    assert data["status"] == "pending_approval" and data["change_freeze"]["reason"] == "release week"


def test_an_edit_in_the_admin_saves_a_new_version_and_keeps_the_old_with_its_votes(
    tenant: Any, operator: Any, tenant_admin: Any
) -> None:
    from django.test import Client

    standard = rule(tenant, target_tags=[])
    data = submit(operator, body())
    assert data["status"] == "queued"
    tenant_admin.is_staff = True
    tenant_admin.is_superuser = False
    tenant_admin.save()
    client = Client()
    client.force_login(tenant_admin)
    page = client.get(f"/admin/approvals/standardchange/{standard.pk}/change/")
    assert page.status_code == 200
    form = {
        "tenant": tenant.pk,
        "name": "log rotation",
        "active": "on",
        "plan_name_pattern": "rotate logs",
        "runbook_slug": "",
        "runbook_version": "",
        "environment": "staging",
        "action_class": "read",
        "target_tags": "[]",
        "max_targets": 1,
        "window_start": "",
        "window_end": "",
    }
    saved = client.post(f"/admin/approvals/standardchange/{standard.pk}/change/", form)
    assert saved.status_code == 302, saved.context and saved.context["adminform"].form.errors
    versions = list(
        StandardChange.objects.order_by("version").values_list("version", "active", "plan_name_pattern")
    )
    assert versions == [(1, False, "rotate .*"), (2, True, "rotate logs")]
    vote = Approval.objects.get(execution__execution_id=data["execution_id"]).votes.get()
    assert vote.voter_name == "standard change log rotation v1"
