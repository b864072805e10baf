"""Expiry: checked at vote time, and the sweeper (service, command, django-q2 task, schedule)."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from approvals.errors import VoteConflict
from approvals.models import Approval
from approvals.services import approval_vote, approvals_expire
from approvals.tasks import expire_approvals
from execution.enums import ApprovalState, ExecutionStatus
from execution.models import Execution, ExecutionEvent
from opsconductor.schedules import SCHEDULES
from tests.approvals.conftest import make_approval

pytestmark = pytest.mark.django_db


def _overdue(approval: Approval) -> None:
    Approval.objects.filter(pk=approval.pk).update(expires_at=timezone.now() - timedelta(seconds=5))


def test_after_expiry_a_vote_is_refused_and_the_sweeper_rejects_the_execution(
    tenant: Any, requester: Any, approver: Any
) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    _overdue(approval)
    with pytest.raises(VoteConflict) as refused:
        approval_vote(approval=approval, voter=approver, decision="approve")
    assert refused.value.code == "expired"
    assert approvals_expire() == 1
    row = Approval.objects.get(pk=approval.pk)
    assert row.state == ApprovalState.EXPIRED
    assert row.responded_at is not None
    execution = Execution.objects.get(pk=approval.execution.pk)
    assert execution.status == ExecutionStatus.REJECTED
    events = list(
        ExecutionEvent.objects.filter(execution_id=execution.execution_id)
        .order_by("id")
        .values_list("event_type", "actor_type")
    )
    assert events[-2:] == [("approval_expired", "system"), ("rejected", "system")]
    # Idempotent: nothing left to expire, and a vote now finds it decided.
    assert approvals_expire() == 0
    with pytest.raises(VoteConflict) as again:
        approval_vote(approval=approval, voter=approver, decision="approve")
    assert again.value.code == "already_decided"


def test_the_sweeper_leaves_approvals_that_are_not_due(tenant: Any, requester: Any) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    assert approvals_expire() == 0
    assert Approval.objects.get(pk=approval.pk).state == ApprovalState.PENDING


def test_an_approval_of_a_cancelled_execution_expires_without_a_transition(
    tenant: Any, requester: Any
) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    Execution.objects.filter(pk=approval.execution.pk).update(status=ExecutionStatus.CANCELLED)
    _overdue(approval)
    assert approvals_expire() == 1
    assert Execution.objects.get(pk=approval.execution.pk).status == ExecutionStatus.CANCELLED


def test_expire_approvals_command(tenant: Any, requester: Any) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    _overdue(approval)
    out = StringIO()
    call_command("expire_approvals", stdout=out)
    assert "1 approval(s) expired" in out.getvalue()
    assert Approval.objects.get(pk=approval.pk).state == ApprovalState.EXPIRED


def test_expiry_task_and_its_schedule(tenant: Any, requester: Any) -> None:
    approval = make_approval(tenant=tenant, actor=requester)
    _overdue(approval)
    assert expire_approvals() == 1
    assert any(job.func == "approvals.tasks.expire_approvals" for job in SCHEDULES)
    from django_q.models import Schedule

    from opsconductor.schedules import schedules_ensure

    schedules_ensure()
    assert Schedule.objects.filter(func="approvals.tasks.expire_approvals").count() == 1
