"""Operator pages /approvals/ and /dlq/ through Django's test client (the browser tests drive
the same pages in chromium)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from approvals.models import Approval, ApprovalVote
from execution.enums import ExecutionStatus
from execution.models import DeadLetter
from tests.approvals.conftest import ensure_policies, make_approval, member, plan_for
from tests.factories import DeadLetterFactory, ExecutionFactory

pytestmark = pytest.mark.django_db


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def detail_url(approval: Any) -> str:
    return f"/approvals/{approval.approval_id}/"


def test_pages_need_a_login(tenant: Any, requester: Any) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    for path in ("/approvals/", detail_url(approval), "/dlq/"):
        response = Client().get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_the_queue_lists_pending_approvals_of_my_tenants_soonest_expiry_first(
    tenant: Any, requester: Any, approver: Any, other_tenant: Any
) -> None:
    make_approval(tenant=tenant, actor=requester, plan=plan_for("later plan"))
    sooner = make_approval(tenant=tenant, actor=requester, plan=plan_for("sooner plan"))
    Approval.objects.filter(pk=sooner.pk).update(expires_at=timezone.now() + timedelta(minutes=2))
    decided = make_approval(tenant=tenant, actor=requester, plan=plan_for("decided plan"))
    Approval.objects.filter(pk=decided.pk).update(state="rejected")
    foreign = make_approval(
        tenant=other_tenant, actor=member(other_tenant, "x"), plan=plan_for("foreign plan")
    )
    html = logged_in(approver).get("/approvals/").content.decode()
    assert html.index("sooner plan") < html.index("later plan")
    assert "decided plan" not in html
    assert "foreign plan" not in html
    assert "rita-requester" in html
    assert str(foreign.approval_id) not in html


def test_the_detail_page_shows_what_is_being_approved(tenant: Any, requester: Any, approver: Any) -> None:
    approval = make_approval(tenant=tenant, actor=requester, level=2)
    html = logged_in(approver).get(detail_url(approval)).content.decode()
    for text in (
        "check config",
        "systemctl restart nginx",
        "web-1",
        "staging",
        "modify",
        "rita-requester",
        "0 of 2 approvals",
        'value="approve"',
        'value="reject"',
        "csrfmiddlewaretoken",
    ):
        assert text in html, text


def test_approve_on_the_page_moves_the_execution_on(
    tenant: Any, requester: Any, approver: Any, queue_calls: Any
) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    client = logged_in(approver)
    response = client.post(detail_url(approval), {"decision": "approve", "comment": "fine"}, follow=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert "decided it" in html
    assert 'id="execution-status">queued' in html
    assert Approval.objects.get(pk=approval.pk).approver_comment == "fine"


def test_the_requester_sees_no_buttons_and_a_forged_post_is_refused(tenant: Any, requester: Any) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    client = logged_in(requester)
    html = client.get(detail_url(approval)).content.decode()
    assert 'value="approve"' not in html
    assert "own execution" in html
    response = client.post(detail_url(approval), {"decision": "approve", "comment": "me"})
    assert response.status_code == 403
    assert "Vote refused" in response.content.decode()
    assert not ApprovalVote.objects.exists()
    assert Approval.objects.get(pk=approval.pk).state == "pending"


def test_a_viewer_sees_no_buttons_and_cannot_vote(tenant: Any, requester: Any, viewer: Any) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    client = logged_in(viewer)
    assert 'value="approve"' not in client.get(detail_url(approval)).content.decode()
    assert client.post(detail_url(approval), {"decision": "reject"}).status_code == 403


def test_a_conflicting_vote_is_409_with_the_reason(tenant: Any, requester: Any, approver: Any) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    Approval.objects.filter(pk=approval.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = logged_in(approver).post(detail_url(approval), {"decision": "approve"})
    assert response.status_code == 409
    assert "expired" in response.content.decode()


def test_another_tenants_approval_is_404(tenant: Any, requester: Any, outsider: Any) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    client = logged_in(outsider)
    assert client.get(detail_url(approval)).status_code == 404
    assert client.post(detail_url(approval), {"decision": "approve"}).status_code == 404


def test_csrf_is_enforced(tenant: Any, requester: Any, approver: Any) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    client = Client(enforce_csrf_checks=True)
    client.force_login(approver)
    assert client.post(detail_url(approval), {"decision": "approve"}).status_code == 403
    assert not ApprovalVote.objects.exists()


def dead_letter(tenant: Any, actor: Any, name: str = "failed plan") -> DeadLetter:
    ensure_policies()
    execution = ExecutionFactory(
        tenant=tenant, actor=actor, status=ExecutionStatus.FAILED, plan_snapshot=plan_for(name)
    )
    return DeadLetterFactory(execution=execution, last_error="boom")


def test_dlq_lists_my_tenants_dead_letters_and_only_admins_get_the_button(
    tenant: Any, requester: Any, approver: Any, tenant_admin: Any, other_tenant: Any
) -> None:
    dead_letter(tenant, requester, "mine failed")
    dead_letter(other_tenant, member(other_tenant, "y"), "theirs failed")
    admin_html = logged_in(tenant_admin).get("/dlq/").content.decode()
    assert "mine failed" in admin_html
    assert "theirs failed" not in admin_html
    assert ">Requeue</button>" in admin_html
    approver_html = logged_in(approver).get("/dlq/").content.decode()
    assert "mine failed" in approver_html
    assert ">Requeue</button>" not in approver_html


def test_only_a_tenant_admin_may_requeue(tenant: Any, requester: Any, approver: Any, outsider: Any) -> None:
    entry = dead_letter(tenant, requester)
    path = f"/dlq/{entry.dlq_id}/requeue/"
    response = logged_in(approver).post(path)
    assert response.status_code == 403
    assert "only an admin" in response.content.decode()
    assert logged_in(outsider).post(path).status_code == 404
    assert not DeadLetter.objects.get(pk=entry.pk).requeued


def test_a_tenant_admin_requeues(tenant: Any, requester: Any, tenant_admin: Any, dlq_calls: Any) -> None:
    entry = dead_letter(tenant, requester)
    response = logged_in(tenant_admin).post(f"/dlq/{entry.dlq_id}/requeue/", follow=True)
    assert response.status_code == 200
    assert "requeued" in response.content.decode()
    assert dlq_calls == [{"dlq_id": entry.dlq_id, "operator": tenant_admin.username}]
    entry.refresh_from_db()
    assert entry.requeued
    assert entry.execution.status == ExecutionStatus.QUEUED
