"""approval_vote: the rules of docs/contract.md#approvals, the events it writes, and how approved executions continue."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import TestCase
from django.utils import timezone

from approvals.errors import VoteConflict, VoteForbidden
from approvals.models import Approval, ApprovalVote
from approvals.services import approval_vote
from execution.enums import ApprovalState, ExecutionMode, ExecutionStatus, Role
from execution.models import Execution, ExecutionEvent
from tests.approvals.conftest import make_approval, member
from tests.factories import snapshot_overwrite

pytestmark = pytest.mark.django_db


def events_of(approval: Approval) -> list[str]:
    return list(
        ExecutionEvent.objects.filter(execution_id=approval.execution.execution_id)
        .order_by("id")
        .values_list("event_type", flat=True)
    )


def test_one_approver_approves_a_level_1_execution_and_it_is_queued(
    tenant: Any, requester: Any, approver: Any, queue_calls: list[Any], capture_events: Any
) -> None:
    approval = make_approval(tenant=tenant, actor=requester, level=1)
    with TestCase.captureOnCommitCallbacks(execute=True):
        result = approval_vote(approval=approval, voter=approver, decision="approve", comment="looks fine")
    assert result.state == ApprovalState.APPROVED
    assert result.approver == approver
    assert result.approver_comment == "looks fine"
    assert result.responded_at is not None
    execution = Execution.objects.get(pk=approval.execution.pk)
    assert execution.status == ExecutionStatus.QUEUED
    assert queue_calls == [{"execution_id": execution.execution_id, "priority": None}]
    assert events_of(approval) == ["approval_requested", "approval_vote", "approved", "queued"]
    approved = ExecutionEvent.objects.get(execution_id=execution.execution_id, event_type="approved")
    assert approved.actor == approver
    assert approved.actor_type == "user"
    assert approved.from_status == "pending_approval"
    assert approved.to_status == "approved"
    vote_event = ExecutionEvent.objects.get(execution_id=execution.execution_id, event_type="approval_vote")
    assert vote_event.details["decision"] == "approve"
    assert vote_event.details["comment"] == "looks fine"
    assert "approval_vote" in capture_events.types()


def test_an_approved_immediate_execution_runs_on_a_worker_at_priority_1(
    tenant: Any, requester: Any, approver: Any, queue_calls: list[Any]
) -> None:
    approval = make_approval(tenant=tenant, actor=requester, level=1, mode=ExecutionMode.IMMEDIATE)
    approval_vote(approval=approval, voter=approver, decision="approve")
    assert queue_calls == [{"execution_id": approval.execution.execution_id, "priority": 1}]


def test_level_2_needs_two_distinct_approvers(
    tenant: Any, requester: Any, approver: Any, second_approver: Any, queue_calls: list[Any]
) -> None:
    approval = make_approval(tenant=tenant, actor=requester, level=2)
    first = approval_vote(approval=approval, voter=approver, decision="approve", comment="1")
    assert first.state == ApprovalState.PENDING
    assert Execution.objects.get(pk=approval.execution.pk).status == ExecutionStatus.PENDING_APPROVAL
    assert queue_calls == []
    with pytest.raises(VoteConflict) as refused:
        approval_vote(approval=approval, voter=approver, decision="approve")
    assert refused.value.code == "already_voted"
    second = approval_vote(approval=approval, voter=second_approver, decision="approve", comment="2")
    assert second.state == ApprovalState.APPROVED
    assert second.approver == second_approver  # the vote that completed it
    assert ApprovalVote.objects.filter(approval=approval).count() == 2
    assert len(queue_calls) == 1


def test_one_rejection_rejects(tenant: Any, requester: Any, approver: Any, second_approver: Any) -> None:
    third = member(tenant, "carl-approver")  # an approver before the submission (four eyes)
    approval = make_approval(tenant=tenant, actor=requester, level=2)
    approval_vote(approval=approval, voter=approver, decision="approve")
    result = approval_vote(approval=approval, voter=second_approver, decision="reject", comment="not today")
    assert result.state == ApprovalState.REJECTED
    execution = Execution.objects.get(pk=approval.execution.pk)
    assert execution.status == ExecutionStatus.REJECTED
    assert execution.completed_at is not None
    assert "not today" in execution.error_message
    rejected = ExecutionEvent.objects.get(execution_id=execution.execution_id, event_type="rejected")
    assert rejected.actor == second_approver
    with pytest.raises(VoteConflict) as refused:
        approval_vote(approval=approval, voter=third, decision="approve")
    assert refused.value.code == "already_decided"


def test_requester_cannot_vote_on_own_execution(tenant: Any) -> None:
    requester = member(tenant, "self-approver", Role.ADMIN)  # even an admin
    approval = make_approval(tenant=tenant, actor=requester)
    with pytest.raises(VoteForbidden) as refused:
        approval_vote(approval=approval, voter=requester, decision="approve")
    assert refused.value.code == "requester"
    assert "own execution" in refused.value.reason
    assert not ApprovalVote.objects.exists()
    # The refusal is recorded on the execution (docs/contract.md#rbac: every denial writes rbac_violation).
    assert events_of(approval) == ["approval_requested", "rbac_violation"]


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR, Role.DEPLOYER])
def test_a_voter_needs_the_approver_or_admin_role(tenant: Any, requester: Any, role: str) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    user = member(tenant, f"someone-{role}", role)
    with pytest.raises(VoteForbidden) as refused:
        approval_vote(approval=approval, voter=user, decision="approve")
    assert refused.value.code == "missing_role"
    assert "approver or admin role" in refused.value.reason


def test_a_tenant_admin_may_vote(tenant: Any, requester: Any, tenant_admin: Any, queue_calls: Any) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    assert approval_vote(approval=approval, voter=tenant_admin, decision="approve").state == "approved"


def test_an_approver_of_another_tenant_may_not_vote(tenant: Any, requester: Any, other_tenant: Any) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    stranger = member(other_tenant, "approver-elsewhere")
    with pytest.raises(VoteForbidden) as refused:
        approval_vote(approval=approval, voter=stranger, decision="approve")
    assert refused.value.code == "missing_role"


def test_a_vote_is_refused_when_the_plan_snapshot_changed_after_the_request(
    tenant: Any, requester: Any, approver: Any
) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    execution = approval.execution
    tampered = dict(execution.plan_snapshot)
    tampered["steps"] = [
        *tampered["steps"],
        {"name": "sneaky", "type": "command", "params": {"command": "rm -rf /"}},
    ]
    # Straight to the database, as a tamperer with superuser rights would (a trigger refuses it
    # to everyone else).
    snapshot_overwrite(execution.pk, tampered)
    with pytest.raises(VoteConflict) as refused:
        approval_vote(approval=approval, voter=approver, decision="approve")
    assert refused.value.code == "plan_changed"
    assert "plan changed" in refused.value.reason
    assert "hash" in refused.value.reason
    assert Approval.objects.get(pk=approval.pk).state == ApprovalState.PENDING
    assert not ApprovalVote.objects.exists()


def test_an_expired_approval_takes_no_votes_even_before_the_sweeper_ran(
    tenant: Any, requester: Any, approver: Any
) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    Approval.objects.filter(pk=approval.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(VoteConflict) as refused:
        approval_vote(approval=approval, voter=approver, decision="approve")
    assert refused.value.code == "expired"
    assert "expired" in refused.value.reason
    assert not ApprovalVote.objects.exists()


def test_a_stale_approval_object_is_re_read_under_the_lock(
    tenant: Any, requester: Any, approver: Any, second_approver: Any, queue_calls: Any
) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    stale = Approval.objects.get(pk=approval.pk)
    approval_vote(approval=approval, voter=approver, decision="approve")
    with pytest.raises(VoteConflict) as refused:
        approval_vote(approval=stale, voter=second_approver, decision="reject", comment="no")
    assert refused.value.code == "already_decided"
    assert Execution.objects.get(pk=approval.execution.pk).status == ExecutionStatus.QUEUED


def test_an_unknown_decision_is_a_programming_error(tenant: Any, requester: Any, approver: Any) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    with pytest.raises(ValueError):
        approval_vote(approval=approval, voter=approver, decision="maybe")


def test_a_vote_on_a_cancelled_execution_is_a_conflict(tenant: Any, requester: Any, approver: Any) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    Execution.objects.filter(pk=approval.execution.pk).update(status=ExecutionStatus.CANCELLED)
    with pytest.raises(VoteConflict) as refused:
        approval_vote(approval=approval, voter=approver, decision="approve")
    assert refused.value.code == "already_decided"
    assert "cancelled" in refused.value.reason


def test_the_bound_hash_is_the_canonical_plan_hash_of_submission(tenant: Any, requester: Any) -> None:
    from execution.plans.hashing import plan_hash as _plan_hash

    approval = make_approval(tenant=tenant, actor=requester)
    assert _plan_hash(approval.execution.plan_snapshot) == approval.plan_hash
    reordered = dict(reversed(list(approval.execution.plan_snapshot.items())))
    assert _plan_hash(reordered) == approval.plan_hash  # key order does not matter
