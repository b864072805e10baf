"""``/``: the operator's home (docs/contract.md#operator-console) -- where the work is, in a fixed number of
queries.

Pending approvals the user may vote on first (approvers land where their work is), then
their tenants' running executions (live), recent failures and the dead-letter count.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import Exists, OuterRef
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from approvals.models import ApprovalVote, GateVote
from approvals.rules import freezes_active
from approvals.selectors import approvals_pending_for, gate_approvals_pending_for
from approvals.views.approvals import time_left
from execution import policy
from execution.enums import ExecutionStatus
from execution.models import DeadLetter
from execution.pages.executions import decorate, live_tenants
from execution.pages.listing import ExecutionFilter, executions_for_console, with_step_counts
from execution.selectors import tenant_ids_of

ACTIVE = [ExecutionStatus.QUEUED, ExecutionStatus.RUNNING, ExecutionStatus.APPROVED]
FAILED = [ExecutionStatus.FAILED, ExecutionStatus.TIMEOUT, ExecutionStatus.PARTIAL]
RECENT = timedelta(hours=24)
LIMIT = 20


def approvals_awaiting_vote(user: Any, tenant_ids: list[int]) -> list[Any]:
    """Pending approvals in tenants where the policy lets ``user`` vote, not barred by four
    eyes (requested or submitted by them, their role newer than the submission), not yet
    voted. A page hint only: the vote service has the last word on every vote.
    """
    voter_tenants = policy.tenant_ids_where(user, policy.Right.VOTE)
    now = timezone.now()
    waiting: list[Any] = []
    # Pre-run approvals and gates inside running plans (docs/approvals.md#gates).
    for pending, votes in ((approvals_pending_for, ApprovalVote), (gate_approvals_pending_for, GateVote)):
        voted = votes.objects.filter(approval_id=OuterRef("pk"), voter_id=user.pk)
        waiting += (
            pending(user)
            .filter(execution__tenant_id__in=voter_tenants, expires_at__gt=now)
            .exclude(policy.four_eyes_barred(user))
            .exclude(Exists(voted))[:LIMIT]
        )
    return sorted(waiting, key=lambda a: a.expires_at)[:LIMIT]


@login_required
def home_page(request: HttpRequest) -> HttpResponse:
    tenant_ids = tenant_ids_of(request.user)
    tenants = live_tenants(tenant_ids)
    now = timezone.now()
    approvals = [
        {
            "approval": a,
            "execution": a.execution,
            "time_left": time_left(a, now),
            "approvals": sum(1 for v in a.votes.all() if v.decision == ApprovalVote.Decision.APPROVE),
        }
        for a in approvals_awaiting_vote(request.user, tenant_ids)
    ]
    running = executions_for_console(tenant_ids=tenant_ids, flt=ExecutionFilter(statuses=list(ACTIVE)))
    failures = executions_for_console(
        tenant_ids=tenant_ids, flt=ExecutionFilter(statuses=list(FAILED))
    ).filter(completed_at__gte=now - RECENT)
    context = {
        "tenants": tenants,
        "freezes": freezes_active(tenant_ids=tenant_ids, now=now),
        "approvals": approvals,
        "running": decorate(list(with_step_counts(running)[:LIMIT])),
        "failures": decorate(list(with_step_counts(failures)[:LIMIT])),
        "dlq_open": DeadLetter.objects.filter(
            execution__tenant_id__in=tenant_ids, requeued=False, archived=False
        ).count(),
        "active_filter": "status=" + ",".join(ACTIVE),
        "failed_filter": "status=" + ",".join(FAILED),
    }
    return render(request, "home.html", context)
