"""Every door lists and decides a waiting gate like a pre-run approval (docs/approvals.md#gates):
REST (the same approve/reject of the execution, the approvals list with step_index), the
pages, the admin and manage.py. The gate is opened by the worker's own call (gate_open)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.management import CommandError, call_command
from django.test import Client

from approvals.gates import gate_open
from approvals.models import GateApproval
from execution.enums import ExecutionStatus, Role
from execution.models import Execution
from execution.services.transition import transition
from tests.approvals.conftest import make_approval, member
from tests.approvals.test_api import client_for
from tests.execution.engine.helpers import make_execution

pytestmark = pytest.mark.django_db
S = ExecutionStatus


def waiting_gate(tenant: Any, actor: Any, **params: Any) -> GateApproval:
    """An execution that ran its first step and reached its gate (step 1)."""
    execution = make_execution(
        tenant=tenant,
        actor=actor,
        steps=[
            {"name": "canary", "type": "noop"},
            {"name": "look", "type": "approval", "params": params, "action_class": "read"},
            {"name": "rest", "type": "noop"},
        ],
    )
    transition(execution, S.RUNNING, expected_from=S.APPROVED)
    execution.steps.filter(step_index=0).update(status=S.COMPLETED)
    execution.steps.filter(step_index=1).update(status=S.RUNNING)
    assert gate_open(execution=execution, step_index=1, item_id=None, lease_token=None, assets=[]) == "parked"
    return GateApproval.objects.get(execution=execution)


def test_rest_lists_the_gate_with_its_step_and_approves_it_through_the_execution(
    tenant: Any, requester: Any, approver: Any, queue_calls: Any
) -> None:
    gate = waiting_gate(tenant, requester, message="canary ok?")
    pre_run = make_approval(tenant=tenant, actor=requester)
    client = client_for(approver)
    listed = client.get("/api/v1/approvals/?state=pending").json()
    assert listed["count"] == 2
    by_id = {row["approval_id"]: row for row in listed["results"]}
    assert by_id[str(gate.approval_id)]["step_index"] == 1
    assert by_id[str(gate.approval_id)]["message"] == "canary ok?"
    assert by_id[str(pre_run.approval_id)]["step_index"] is None
    page = client.get("/api/v1/approvals/?state=pending&limit=1&offset=1").json()
    assert page["count"] == 2 and len(page["results"]) == 1
    answer = client.post(f"/api/v1/executions/{gate.execution.execution_id}/approve/", {}, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["status"] == "queued"
    assert answer.json()["approval"]["approval_id"] == str(gate.approval_id)
    steps = Execution.objects.get(pk=gate.execution.pk).steps.order_by("step_index")
    assert [s.status for s in steps] == [S.COMPLETED, S.COMPLETED, S.QUEUED]
    again = client.post(f"/api/v1/executions/{gate.execution.execution_id}/approve/", {}, format="json")
    assert again.status_code == 409 and again.json()["reason"] == "already_decided"


def test_rest_rejecting_a_gate_needs_a_comment(tenant: Any, requester: Any, approver: Any) -> None:
    gate = waiting_gate(tenant, requester)
    url = f"/api/v1/executions/{gate.execution.execution_id}/reject/"
    refused = client_for(approver).post(url, {"comment": "  "}, format="json")
    assert refused.status_code == 400
    assert refused.json()["errors"] == [
        {"path": "comment", "message": "a rejection needs a comment saying why"}
    ]
    assert not gate.votes.exists()
    done = client_for(approver).post(url, {"comment": "canary 500s"}, format="json")
    assert done.status_code == 200 and done.json()["status"] == "rejected"
    steps = Execution.objects.get(pk=gate.execution.pk).steps.order_by("step_index")
    assert [s.status for s in steps] == [S.COMPLETED, S.REJECTED, S.CANCELLED]


def test_the_pages_list_and_decide_a_gate(
    tenant: Any, requester: Any, approver: Any, queue_calls: Any
) -> None:
    gate = waiting_gate(tenant, requester, message="look at the graphs")
    client = Client()
    client.force_login(approver)
    listing = client.get("/approvals/").content.decode()
    assert str(gate.approval_id) in listing and "gate at step 1" in listing
    detail = client.get(f"/approvals/{gate.approval_id}/").content.decode()
    assert 'id="gate"' in detail and "look at the graphs" in detail and 'id="vote-form"' in detail
    home = client.get("/").content.decode()
    assert str(gate.approval_id) in home
    client.post(f"/approvals/{gate.approval_id}/", {"decision": "approve", "comment": ""})
    gate.refresh_from_db()
    assert gate.state == "approved"
    assert Execution.objects.get(pk=gate.execution.pk).status == S.QUEUED


def test_the_admin_lists_and_decides_a_gate(
    tenant: Any, requester: Any, approver: Any, queue_calls: Any
) -> None:
    gate = waiting_gate(tenant, requester)
    approver.is_staff = True
    approver.save()
    client = Client()
    client.force_login(approver)
    changelist = "/admin/approvals/gateapproval/"
    assert str(gate.execution.execution_id) in client.get(changelist).content.decode()
    form = {"action": "reject_selected", ACTION_CHECKBOX_NAME: [gate.pk], "confirm": "yes", "comment": ""}
    asked = client.post(changelist, form).content.decode()
    assert "needs a comment" in asked and not gate.votes.exists()
    client.post(changelist, {**form, "comment": "not now"})
    gate.refresh_from_db()
    assert gate.state == "rejected"
    assert Execution.objects.get(pk=gate.execution.pk).status == S.REJECTED


def test_manage_py_decides_a_gate(tenant: Any, requester: Any, approver: Any, queue_calls: Any) -> None:
    second = member(tenant, "second-approver", Role.APPROVER)  # a member before the submission
    gate = waiting_gate(tenant, requester, level=2)
    execution_id = str(gate.execution.execution_id)
    with pytest.raises(CommandError, match="--comment"):
        call_command("reject", execution_id, "--user", approver.username)
    call_command("approve", execution_id, "--user", approver.username, "--comment", "one")
    call_command("approve", execution_id, "--user", second.username)
    gate.refresh_from_db()
    assert gate.state == "approved" and gate.votes.count() == 2
