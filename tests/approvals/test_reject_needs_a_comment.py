"""A rejection says why, on every door (docs/contract.md#approvals): REST answers 400 naming
``comment``, ``manage.py reject`` exits non-zero with one line, the page and the admin ask
again; nothing is recorded. A comment of blanks is no comment."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.management import CommandError, call_command
from django.test import Client

from approvals.models import Approval, ApprovalVote
from execution.enums import ExecutionStatus
from execution.models import Execution
from tests.approvals.conftest import make_approval
from tests.approvals.test_api import client_for, url

pytestmark = pytest.mark.django_db


def _nothing_recorded(approval: Any) -> None:
    assert not ApprovalVote.objects.filter(approval=approval).exists()
    assert Approval.objects.get(pk=approval.pk).state == "pending"
    assert Execution.objects.get(pk=approval.execution.pk).status == ExecutionStatus.PENDING_APPROVAL


@pytest.mark.parametrize("body", [{}, {"comment": ""}, {"comment": "   "}])
def test_rest_refuses_a_rejection_without_a_comment(
    tenant: Any, requester: Any, approver: Any, body: dict[str, str]
) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    response = client_for(approver).post(url(approval.execution, "reject"), body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["errors"] == [
        {"path": "comment", "message": "a rejection needs a comment saying why"}
    ]
    _nothing_recorded(approval)
    answer = client_for(approver).post(
        url(approval.execution, "reject"), {"comment": "not today"}, format="json"
    )
    assert answer.status_code == 200 and answer.json()["approval"]["state"] == "rejected"


def test_an_approval_needs_no_comment(tenant: Any, requester: Any, approver: Any, queue_calls: Any) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    assert client_for(approver).post(url(approval.execution, "approve"), {}, format="json").status_code == 200


def test_the_reject_command_exits_non_zero_without_a_comment(
    tenant: Any, requester: Any, approver: Any
) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    with pytest.raises(CommandError) as refused:
        call_command("reject", str(approval.execution.execution_id), "--user", approver.username)
    assert refused.value.returncode != 0
    assert str(refused.value) == "vote refused: --comment: a rejection needs a comment saying why"
    _nothing_recorded(approval)


def test_the_page_asks_again_for_a_rejection_without_a_comment(
    tenant: Any, requester: Any, approver: Any
) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    client = Client()
    client.force_login(approver)
    response = client.post(f"/approvals/{approval.approval_id}/", {"decision": "reject", "comment": " "})
    assert response.status_code == 400
    assert "a rejection needs a comment saying why" in response.content.decode()
    assert 'id="vote-form"' in response.content.decode()
    _nothing_recorded(approval)


def test_the_admin_asks_again_for_a_rejection_without_a_comment(
    tenant: Any, requester: Any, approver: Any
) -> None:
    approver.is_staff = True
    approver.save(update_fields=["is_staff"])
    approval = make_approval(tenant=tenant, actor=requester)
    client = Client()
    client.force_login(approver)
    form = {"action": "reject_selected", ACTION_CHECKBOX_NAME: [approval.pk], "confirm": "yes", "comment": ""}
    response = client.post("/admin/approvals/approval/", form)
    html = response.content.decode()
    assert response.status_code == 200 and "A rejection needs a comment saying why." in html
    assert 'name="comment"' in html and "required" in html
    _nothing_recorded(approval)
    client.post("/admin/approvals/approval/", {**form, "comment": "wrong window"})
    assert Approval.objects.get(pk=approval.pk).state == "rejected"
