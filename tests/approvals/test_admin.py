"""The approvals admin: pending by default, the staff user's tenants, vote actions with a comment."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client
from django.utils import timezone

from approvals.models import Approval, ApprovalVote
from execution.enums import Role
from tests.approvals.conftest import make_approval, member, plan_for
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/approvals/approval/"


def staff(user: Any) -> Client:
    user.is_staff = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


def test_the_list_shows_pending_by_default_and_only_my_tenants(
    tenant: Any, requester: Any, other_tenant: Any
) -> None:
    boss = member(tenant, "boss", Role.ADMIN)
    make_approval(tenant=tenant, actor=requester, plan=plan_for("pending here"))
    done = make_approval(tenant=tenant, actor=requester, plan=plan_for("approved here"))
    Approval.objects.filter(pk=done.pk).update(state="approved")
    make_approval(tenant=other_tenant, actor=member(other_tenant, "z"), plan=plan_for("pending elsewhere"))
    client = staff(boss)
    html = client.get(CHANGELIST).content.decode()
    assert "pending here" in html
    assert "approved here" not in html
    assert "pending elsewhere" not in html
    assert "/admin/execution/execution/" in html  # link to the execution
    html_all = client.get(CHANGELIST + "?state=all").content.decode()
    assert "approved here" in html_all
    assert "pending elsewhere" not in html_all


def test_a_superuser_sees_every_tenant_but_votes_only_through_a_membership(
    tenant: Any, requester: Any, other_tenant: Any
) -> None:
    # The admin is a superuser's all-tenant tool (docs/contract.md#tenant-administration), but
    # four eyes count people: a vote needs the voter's own approver or admin membership.
    root = UserFactory(username="root", is_superuser=True)
    MembershipFactory(tenant=tenant, user=root, role=Role.APPROVER)
    here = make_approval(tenant=tenant, actor=requester, plan=plan_for("pending here"))
    there = make_approval(
        tenant=other_tenant, actor=member(other_tenant, "z"), plan=plan_for("pending elsewhere")
    )
    client = staff(root)
    html = client.get(CHANGELIST).content.decode()
    assert "pending here" in html and "pending elsewhere" in html
    form = {"action": "approve_selected", ACTION_CHECKBOX_NAME: [there.pk], "confirm": "yes", "comment": "ok"}
    refused = client.post(CHANGELIST, form, follow=True).content.decode()
    assert "vote refused" in refused and "not a member" in refused
    assert not ApprovalVote.objects.exists()
    client.post(CHANGELIST, {**form, ACTION_CHECKBOX_NAME: [here.pk]})
    assert Approval.objects.get(pk=here.pk).state == "approved"


def test_approve_action_asks_for_a_comment_then_votes(
    tenant: Any, requester: Any, approver: Any, queue_calls: Any
) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    client = staff(approver)
    form = {"action": "approve_selected", ACTION_CHECKBOX_NAME: [approval.pk], "index": 0}
    page = client.post(CHANGELIST, form)
    assert page.status_code == 200
    assert 'name="comment"' in page.content.decode()
    assert not ApprovalVote.objects.exists()  # nothing happens before the comment page
    done = client.post(CHANGELIST, {**form, "confirm": "yes", "comment": "via admin"}, follow=True)
    assert done.status_code == 200
    row = Approval.objects.get(pk=approval.pk)
    assert row.state == "approved"
    assert row.approver_comment == "via admin"
    assert "approve recorded" in done.content.decode()


def test_a_refused_admin_vote_shows_the_reason(tenant: Any) -> None:
    requester = member(tenant, "self", Role.ADMIN)
    approval = make_approval(tenant=tenant, actor=requester)
    client = staff(requester)
    form = {
        "action": "reject_selected",
        ACTION_CHECKBOX_NAME: [approval.pk],
        "confirm": "yes",
        "comment": "no",
    }
    html = client.post(CHANGELIST, form, follow=True).content.decode()
    assert "vote refused" in html
    assert "own execution" in html
    assert Approval.objects.get(pk=approval.pk).state == "pending"


def test_the_change_page_shows_votes_inline(tenant: Any, requester: Any, approver: Any) -> None:
    approval = make_approval(tenant=tenant, actor=requester, level=2)
    ApprovalVote.objects.create(approval=approval, voter=approver, decision="approve", comment="inline me")
    html = staff(approver).get(f"{CHANGELIST}{approval.pk}/change/").content.decode()
    assert "inline me" in html
    assert f"/executions/{approval.execution.execution_id}/" in html


def test_staff_without_an_approving_role_sees_approvals_but_a_vote_is_refused_and_recorded(
    tenant: Any, requester: Any, viewer: Any
) -> None:
    from execution.models import ExecutionEvent

    approval = make_approval(tenant=tenant, actor=requester)
    client = staff(viewer)
    assert client.get(CHANGELIST).status_code == 200  # as GET /api/v1/approvals/ lists it to members
    form = {
        "action": "approve_selected",
        ACTION_CHECKBOX_NAME: [approval.pk],
        "confirm": "yes",
        "comment": "",
    }
    html = client.post(CHANGELIST, form, follow=True).content.decode()
    assert "vote refused" in html
    assert Approval.objects.get(pk=approval.pk).state == "pending"
    assert ExecutionEvent.objects.filter(
        execution_id=approval.execution.execution_id, event_type="rbac_violation"
    ).exists()


def test_approve_action_takes_a_run_window_and_refuses_a_bad_one(
    tenant: Any, requester: Any, approver: Any, queue_calls: Any
) -> None:
    # The admin is a door of run windows too (docs/approvals.md#run-windows): the same two
    # fields as the approval page, through the same vote service.
    approval = make_approval(tenant=tenant, actor=requester)
    client = staff(approver)
    form = {"action": "approve_selected", ACTION_CHECKBOX_NAME: [approval.pk], "index": 0}
    asked = client.post(CHANGELIST, form).content.decode()
    assert 'name="window_start"' in asked and 'name="window_end"' in asked
    start = (timezone.now() + timedelta(hours=1)).replace(second=0, microsecond=0)
    end = start + timedelta(hours=2)
    fmt = "%Y-%m-%dT%H:%M"
    backwards = {**form, "confirm": "yes", "comment": "", "window_start": end.strftime(fmt)}
    backwards["window_end"] = start.strftime(fmt)
    refused = client.post(CHANGELIST, backwards, follow=True).content.decode()
    assert "vote not recorded: window: the window must end after it starts" in refused
    half = client.post(CHANGELIST, {**form, "confirm": "yes", "window_start": start.strftime(fmt)})
    assert "Run window: window_end" in half.content.decode()
    assert not ApprovalVote.objects.exists()
    window = {"window_start": start.strftime(fmt), "window_end": end.strftime(fmt)}
    done = client.post(CHANGELIST, {**form, "confirm": "yes", **window}, follow=True).content.decode()
    row = Approval.objects.get(pk=approval.pk)
    assert (row.state, row.run_after, row.run_before) == ("approved", start, end)
    assert f"run window {start.isoformat()} to {end.isoformat()}" in done
