"""The outcome of an approval is decided exactly once under concurrent votes."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import close_old_connections, connection

from approvals.errors import VoteConflict
from approvals.models import Approval, ApprovalVote
from approvals.services import approval_vote
from execution.enums import ApprovalState, ExecutionStatus
from execution.models import Execution, ExecutionEvent, QueueItem
from tests.approvals.conftest import make_approval, member


def _race(approval: Any, voters: list[Any], decisions: list[str]) -> tuple[list[Any], list[Exception]]:
    barrier = threading.Barrier(len(voters))
    results: list[Any] = []
    errors: list[Exception] = []
    lock = threading.Lock()

    def vote(voter: Any, decision: str) -> None:
        try:
            barrier.wait(timeout=60)
            result = approval_vote(approval=approval, voter=voter, decision=decision, comment="race")
            with lock:
                results.append(result)
        except Exception as error:
            with lock:
                errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=vote, args=(v, d)) for v, d in zip(voters, decisions, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    close_old_connections()
    return results, errors


@pytest.mark.django_db(transaction=True)
def test_ten_approvers_at_once_on_level_1_decide_once(tenant: Any, requester: Any, queue_calls: Any) -> None:
    voters = [member(tenant, f"racer-{i}") for i in range(10)]  # approvers before the submission (four eyes)
    approval = make_approval(tenant=tenant, actor=requester, level=1)
    results, errors = _race(approval, voters, ["approve"] * 10)
    # One vote decided it; the others found it decided (409) — none failed otherwise.
    assert len(results) == 1, errors
    assert len(errors) == 9
    assert all(isinstance(e, VoteConflict) and e.code == "already_decided" for e in errors), errors
    row = Approval.objects.get(pk=approval.pk)
    assert row.state == ApprovalState.APPROVED
    assert ApprovalVote.objects.filter(approval=approval).count() == 1
    assert row.approver_id == ApprovalVote.objects.get(approval=approval).voter_id
    execution_id = approval.execution.execution_id
    assert ExecutionEvent.objects.filter(execution_id=execution_id, event_type="approved").count() == 1
    assert QueueItem.objects.filter(execution_id=execution_id).count() == 1
    assert len(queue_calls) == 1
    assert Execution.objects.get(execution_id=execution_id).status == ExecutionStatus.QUEUED


@pytest.mark.django_db(transaction=True)
def test_concurrent_votes_on_level_2_lose_no_outcome(tenant: Any, requester: Any, queue_calls: Any) -> None:
    # Without serialising the votes, two approves could each count only themselves and leave
    # a two-person rule pending forever with two approvals.
    voters = [member(tenant, f"pair-{i}") for i in range(2)]  # approvers before the submission (four eyes)
    approval = make_approval(tenant=tenant, actor=requester, level=2)
    _results, errors = _race(approval, voters, ["approve", "approve"])
    assert errors == []
    assert Approval.objects.get(pk=approval.pk).state == ApprovalState.APPROVED
    assert len(queue_calls) == 1


@pytest.mark.django_db(transaction=True)
def test_a_voter_racing_themself_votes_once(tenant: Any, requester: Any, approver: Any) -> None:
    approval = make_approval(tenant=tenant, actor=requester, level=2)
    results, errors = _race(approval, [approver] * 5, ["approve"] * 5)
    assert len(results) == 1
    assert all(isinstance(e, VoteConflict) and e.code == "already_voted" for e in errors), errors
    assert ApprovalVote.objects.filter(approval=approval).count() == 1


@pytest.mark.django_db(transaction=True)
def test_approve_and_reject_racing_end_in_exactly_one_outcome(
    tenant: Any, requester: Any, queue_calls: Any
) -> None:
    voters = [member(tenant, f"mixed-{i}") for i in range(6)]  # approvers before the submission (four eyes)
    approval = make_approval(tenant=tenant, actor=requester, level=1)
    results, errors = _race(approval, voters, ["approve", "reject"] * 3)
    assert len(results) == 1, errors
    row = Approval.objects.get(pk=approval.pk)
    execution = Execution.objects.get(pk=approval.execution.pk)
    decided = ExecutionEvent.objects.filter(
        execution_id=execution.execution_id, event_type__in=["approved", "rejected"]
    )
    assert decided.count() == 1
    if row.state == ApprovalState.APPROVED:
        assert execution.status == ExecutionStatus.QUEUED
    else:
        assert row.state == ApprovalState.REJECTED
        assert execution.status == ExecutionStatus.REJECTED
        assert queue_calls == []
