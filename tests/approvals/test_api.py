"""REST: POST /api/v1/executions/{id}/approve/ and .../reject/ with a comment."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from approvals.models import Approval
from execution.enums import Role
from tests.approvals.conftest import make_approval, member
from tests.factories import ExecutionFactory, snapshot_overwrite, token_for

pytestmark = pytest.mark.django_db


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


def url(execution: Any, decision: str) -> str:
    return f"/api/v1/executions/{execution.execution_id}/{decision}/"


def test_an_approver_approves_with_a_token(
    tenant: Any, requester: Any, approver: Any, queue_calls: Any
) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    response = client_for(approver).post(
        url(approval.execution, "approve"), {"comment": "ship it"}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "queued"
    assert body["approval"]["state"] == "approved"
    assert body["approval"]["approver"] == approver.username
    assert body["approval"]["votes"][0]["comment"] == "ship it"


def test_reject_over_a_session(tenant: Any, requester: Any, approver: Any) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    client = APIClient()
    client.force_login(approver)
    response = client.post(url(approval.execution, "reject"), {"comment": "no"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "rejected"


def test_the_requester_gets_403_with_the_reason(tenant: Any, requester: Any) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    response = client_for(requester).post(url(approval.execution, "approve"), {}, format="json")
    assert response.status_code == 403
    assert response.json()["reason"] == "requester"
    assert "own execution" in response.json()["detail"]


def test_a_viewer_gets_403(tenant: Any, requester: Any, viewer: Any) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    response = client_for(viewer).post(url(approval.execution, "approve"), {}, format="json")
    assert response.status_code == 403
    assert response.json()["reason"] == "missing_role"


def test_another_tenants_execution_is_404(tenant: Any, requester: Any, outsider: Any) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    response = client_for(outsider).post(url(approval.execution, "approve"), {}, format="json")
    assert response.status_code == 404
    assert Approval.objects.get(pk=approval.pk).state == "pending"


def test_an_unknown_execution_is_404(approver: Any) -> None:
    response = client_for(approver).post("/api/v1/executions/00000000-0000-0000-0000-000000000000/approve/")
    assert response.status_code == 404


@pytest.mark.parametrize("case", ["already_voted", "already_decided", "expired", "plan_changed"])
def test_conflicts_are_409_with_the_reason(
    tenant: Any, requester: Any, approver: Any, second_approver: Any, case: str, queue_calls: Any
) -> None:
    approval = make_approval(tenant=tenant, actor=requester, level=2)
    client = client_for(approver)
    if case == "already_voted":
        assert client.post(url(approval.execution, "approve")).status_code == 200
    elif case == "already_decided":
        client_for(second_approver).post(url(approval.execution, "reject"), {"comment": "no"}, format="json")
    elif case == "expired":
        Approval.objects.filter(pk=approval.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    else:
        snapshot_overwrite(approval.execution.pk, {"name": "other", "steps": []})
    response = client.post(url(approval.execution, "approve"), {"comment": "x"}, format="json")
    assert response.status_code == 409
    assert response.json()["reason"] == case
    assert response.json()["detail"]


def test_a_level_0_execution_has_no_approval_to_vote_on(tenant: Any, approver: Any) -> None:
    execution = ExecutionFactory(tenant=tenant, status="approved")
    response = client_for(approver).post(url(execution, "approve"))
    assert response.status_code == 409
    assert response.json()["reason"] == "no_approval"


def test_anonymous_is_refused(tenant: Any, requester: Any) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    assert APIClient().post(url(approval.execution, "approve")).status_code in (401, 403)


def test_a_comment_over_2000_characters_is_a_400(tenant: Any, requester: Any, approver: Any) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    response = client_for(approver).post(
        url(approval.execution, "approve"), {"comment": "x" * 2001}, format="json"
    )
    assert response.status_code == 400


def test_admin_role_may_vote_over_rest(tenant: Any, requester: Any, queue_calls: Any) -> None:
    boss = member(tenant, "boss", Role.ADMIN)  # an admin before the submission (four eyes)
    approval = make_approval(tenant=tenant, actor=requester)
    assert client_for(boss).post(url(approval.execution, "approve")).status_code == 200


def test_list_approvals_of_my_tenants_by_state(
    tenant: Any, requester: Any, approver: Any, other_tenant: Any, queue_calls: Any
) -> None:
    pending = make_approval(tenant=tenant, actor=requester)
    approved = make_approval(tenant=tenant, actor=requester)
    client_for(approver).post(url(approved.execution, "approve"))
    make_approval(tenant=other_tenant, actor=member(other_tenant, "q"))
    client = client_for(approver)
    body = client.get("/api/v1/approvals/?state=pending").json()
    assert body["count"] == 1
    assert body["results"][0]["approval_id"] == str(pending.approval_id)
    assert body["results"][0]["execution_id"] == str(pending.execution.execution_id)
    assert client.get("/api/v1/approvals/").json()["count"] == 2
    assert client.get("/api/v1/approvals/?state=bogus").status_code == 400


def test_a_secret_in_a_vote_comment_is_stored_and_shown_masked(
    tenant: Any, requester: Any, approver: Any, queue_calls: Any
) -> None:
    """The approvals API masked a vote's comment when it answered, but the row kept it, so the
    execution's body (its approval's votes), its page and the admin showed it as typed."""
    from approvals.models import ApprovalVote

    approval = make_approval(tenant=tenant, actor=requester)
    typed = "rotated it, password=Hunter2-Secret-Value"
    answer = client_for(approver).post(url(approval.execution, "approve"), {"comment": typed}, format="json")
    assert answer.status_code == 200, answer.content
    shown = client_for(requester).get(f"/api/v1/executions/{approval.execution.execution_id}/")
    comment = shown.json()["approval"]["votes"][0]["comment"]
    assert "Hunter2-Secret-Value" not in comment and comment.startswith("rotated it, password=")
    vote = ApprovalVote.objects.get(approval=approval)
    approval.refresh_from_db()
    assert "Hunter2-Secret-Value" not in vote.comment + approval.approver_comment
