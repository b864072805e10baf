"""Four eyes count people (finding 6; docs/security.md#four-eyes), at every door that votes:
REST, the approvals page, the admin action and ``manage.py approve``.

The finding: a tenant admin with submit-on-behalf submitted a plan on behalf of a deployer
and approved it themselves; approvers created on the members page after the submission
counted as the second pair of eyes. Now the submitting account is a requester too, a vote
needs a role that predates the submission, and only a superuser grants submit-on-behalf.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.management import CommandError, call_command
from django.test import Client

from approvals.errors import VoteForbidden
from approvals.models import Approval, ApprovalVote
from approvals.services import approval_vote
from execution.enums import ExecutionStatus, Role
from execution.models import AuditLog, Execution, Membership
from tests.execution.api.conftest import client_for, noop_body
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def _browser(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _submit_on_behalf(submitter: Any, actor: Any, *, level: int = 2) -> Approval:
    """A real REST submission by ``submitter`` on behalf of ``actor`` (a level-``level`` plan)."""
    body = noop_body(environment="prod", level=level)
    body["on_behalf_of"] = actor.username
    response = client_for(submitter).post("/api/v1/executions/", body, format="json")
    assert response.status_code == 202, response.content
    execution = Execution.objects.get(execution_id=response.json()["execution_id"])
    assert execution.actor == actor and execution.submitted_by == submitter
    return Approval.objects.get(execution=execution)


def _vote_rest(user: Any, approval: Approval) -> Any:
    url = f"/api/v1/executions/{approval.execution.execution_id}/approve/"
    return client_for(user).post(url, {"comment": "fine"}, format="json")


def _vote_page(user: Any, approval: Approval) -> Any:
    return _browser(user).post(f"/approvals/{approval.approval_id}/", {"decision": "approve"})


def _vote_admin(user: Any, approval: Approval) -> Any:
    return _browser(user).post(
        "/admin/approvals/approval/",
        {
            "action": "approve_selected",
            ACTION_CHECKBOX_NAME: [approval.pk],
            "index": 0,
            "confirm": "yes",
            "comment": "",
        },
    )


def _vote_command(user: Any, approval: Approval) -> str:
    with pytest.raises(CommandError) as refused:
        call_command("approve", str(approval.execution.execution_id), "--user", user.username)
    return str(refused.value)


def _voted(user: Any, approval: Approval) -> bool:
    return ApprovalVote.objects.filter(approval=approval, voter=user).exists()


@pytest.fixture
def on_behalf_admin(tenant: Any) -> Any:
    """A tenant admin holding submit-on-behalf (granted by a superuser), staff for the admin."""
    user = UserFactory(username="sam-submitter", is_staff=True)
    MembershipFactory(tenant=tenant, user=user, role=Role.ADMIN, can_submit_on_behalf=True)
    return user


def _refused_at(door: str, user: Any, approval: Approval) -> str:
    """Vote through ``door``; the door must refuse: returns what it said (its reason)."""
    if door == "rest":
        answer = _vote_rest(user, approval)
        assert answer.status_code == 403, answer.content
        return f"{answer.json()['reason']}: {answer.json()['detail']}"
    if door == "page":
        answer = _vote_page(user, approval)
        text = answer.content.decode()
        assert answer.status_code == 403, text[:500]
        return text
    if door == "admin":
        user.is_staff = True
        user.save(update_fields=["is_staff"])
        answer = _vote_admin(user, approval)
        assert answer.status_code == 302
        messages = [str(m) for m in answer.wsgi_request._messages]  # type: ignore[attr-defined]
        return " ".join(messages)
    return _vote_command(user, approval)


DOORS = ["rest", "page", "admin", "command"]


@pytest.mark.parametrize("door", DOORS)
def test_the_on_behalf_submitter_cannot_vote(
    door: str, tenant: Any, on_behalf_admin: Any, deployer: Any
) -> None:
    approval = _submit_on_behalf(on_behalf_admin, deployer)
    said = _refused_at(door, on_behalf_admin, approval)
    assert "submitted this execution on behalf" in said, said
    assert not _voted(on_behalf_admin, approval)
    assert Approval.objects.get(pk=approval.pk).state == "pending"


def test_neither_requester_of_an_on_behalf_submission_sees_vote_buttons(
    tenant: Any, on_behalf_admin: Any, deployer: Any
) -> None:
    approval = _submit_on_behalf(on_behalf_admin, deployer)
    for user in (on_behalf_admin, deployer):
        page = _browser(user).get(f"/approvals/{approval.approval_id}/").content.decode()
        assert 'name="decision"' not in page, user
    # The account on whose behalf it was submitted is a requester as always.
    assert _vote_rest(deployer, approval).status_code == 403


def test_two_admins_still_approve_what_an_on_behalf_account_submitted(
    tenant: Any, on_behalf_admin: Any, deployer: Any, approver: Any, tenant_admin: Any
) -> None:
    """The rule bars people, not the work: two other voters approve it."""
    approval = _submit_on_behalf(on_behalf_admin, deployer)
    assert _vote_rest(approver, approval).status_code == 200
    assert _vote_rest(tenant_admin, approval).status_code == 200
    assert Approval.objects.get(pk=approval.pk).state == "approved"


def _submitted_by(user: Any) -> Approval:
    body = noop_body(environment="prod", level=2)
    response = client_for(user).post("/api/v1/executions/", body, format="json")
    assert response.status_code == 202, response.content
    return Approval.objects.get(execution__execution_id=response.json()["execution_id"])


@pytest.mark.parametrize("door", DOORS)
def test_a_sockpuppet_approver_added_after_the_submission_cannot_vote(
    door: str, tenant: Any, tenant_admin: Any, deployer: Any, approver: Any
) -> None:
    approval = _submitted_by(deployer)
    assert _vote_rest(approver, approval).status_code == 200  # an approver from before: counts
    added = _browser(tenant_admin).post(
        f"/tenants/{tenant.slug}/members/",
        {"action": "add", "username": "puppet", "role": "approver", "password": "long-enough-1"},
    )
    assert added.status_code == 302
    puppet = Membership.objects.get(tenant=tenant, user__username="puppet").user
    said = _refused_at(door, puppet, approval)
    assert "before the submission" in said, said
    assert not _voted(puppet, approval)
    assert Approval.objects.get(pk=approval.pk).state == "pending"
    assert Execution.objects.get(pk=approval.execution.pk).status == ExecutionStatus.PENDING_APPROVAL


def test_a_viewer_promoted_after_the_submission_cannot_vote_but_approver_to_admin_keeps_it(
    tenant: Any, tenant_admin: Any, deployer: Any, viewer: Any, approver: Any
) -> None:
    approval = _submitted_by(deployer)
    page = _browser(tenant_admin)
    for user, role in ((viewer, "approver"), (approver, "admin")):
        membership = Membership.objects.get(tenant=tenant, user=user)
        answer = page.post(
            f"/tenants/{tenant.slug}/members/", {"action": "role", "membership": membership.pk, "role": role}
        )
        assert answer.status_code == 302
    with pytest.raises(VoteForbidden) as refused:
        approval_vote(approval=approval, voter=viewer, decision="approve")
    assert refused.value.code == "role_too_recent"
    approval_vote(approval=approval, voter=approver, decision="approve")  # approver -> admin: still votes


def test_a_tenant_admin_cannot_grant_submit_on_behalf_in_the_admin(tenant: Any) -> None:
    alice = UserFactory(username="alice-admin", is_staff=True)
    mine = MembershipFactory(tenant=tenant, user=alice, role=Role.ADMIN)
    url = f"/admin/execution/membership/{mine.pk}/change/"
    form = _browser(alice).get(url).content.decode()
    assert 'name="can_submit_on_behalf"' not in form  # shown read-only
    answer = _browser(alice).post(url, {"role": "admin", "can_submit_on_behalf": "on"})
    assert answer.status_code == 302
    assert not Membership.objects.get(pk=mine.pk).can_submit_on_behalf
    # A superuser grants it, audited.
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    answer = _browser(root).post(url, {"role": "admin", "can_submit_on_behalf": "on"})
    assert answer.status_code == 302
    assert Membership.objects.get(pk=mine.pk).can_submit_on_behalf
    row = AuditLog.objects.get(event_type="member_on_behalf_changed")
    assert row.actor == root and row.details["can_submit_on_behalf"] is True and row.tenant == tenant


def test_the_home_page_asks_no_vote_of_those_four_eyes_bar(
    tenant: Any, on_behalf_admin: Any, deployer: Any, tenant_admin: Any, approver: Any
) -> None:
    """The home page's "waiting for your vote" (its set form of the rule) lists an approval
    to a voter who may vote, not to the on-behalf submitter nor to an approver added later."""
    approval = _submit_on_behalf(on_behalf_admin, deployer)
    puppet = UserFactory(username="puppet")
    MembershipFactory(tenant=tenant, user=puppet, role=Role.APPROVER)
    marker = f"/approvals/{approval.approval_id}/"
    assert marker in _browser(approver).get("/").content.decode()
    for barred in (on_behalf_admin, deployer, puppet):
        assert marker not in _browser(barred).get("/").content.decode(), barred
