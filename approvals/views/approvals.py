"""``/approvals/`` (pending approvals of the user's tenants) and ``/approvals/<id>/`` (vote)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from approvals.errors import VoteConflict, VoteForbidden, VoteInvalid
from approvals.models import AnyApproval, ApprovalVote
from approvals.run_window import form_window
from approvals.selectors import approval_by_id, pending_approvals_for
from approvals.services import approval_vote, approval_vote_forbidden
from execution import policy
from execution.enums import ApprovalState
from execution.masking import mask_data, mask_text
from execution.pages.access import page_require
from execution.pages.executions import live_tenants
from execution.selectors import tenant_ids_of


def time_left(approval: AnyApproval, now: Any = None) -> str:
    """'12 min 5 s' until the approval expires, or 'expired'."""
    seconds = int((approval.expires_at - (now or timezone.now())).total_seconds())
    if seconds <= 0:
        return "expired"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def _approve_count(approval: AnyApproval) -> int:
    return sum(1 for vote in approval.votes.all() if vote.decision == ApprovalVote.Decision.APPROVE)


@login_required
def approval_list(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    # The page follows its tenants' streams from here (read before the rows: whatever
    # changes in between is replayed) and renders itself again on approval news.
    tenants = live_tenants(tenant_ids_of(request.user))
    rows = [
        {
            "approval": approval,
            "execution": approval.execution,
            "time_left": time_left(approval, now),
            "approvals": _approve_count(approval),
            "steps": len(approval.execution.plan_snapshot.get("steps") or []),
        }
        for approval in pending_approvals_for(request.user, limit=200)
    ]
    return render(request, "approvals/approval_list.html", {"rows": rows, "tenants": tenants})


def _steps(approval: AnyApproval) -> list[dict[str, Any]]:
    execution = approval.execution
    planned = execution.plan_snapshot.get("steps") or []
    rows = {step.step_index: step for step in execution.steps.all()}
    out = []
    for index, spec in enumerate(planned):
        row = rows.get(index)
        target = spec.get("target") or {}
        fleet = _fleet(spec)
        out.append(
            {
                "index": index,
                "name": spec.get("name") or (row.step_name if row else ""),
                "type": spec.get("type") or (row.step_type if row else ""),
                "target": target.get("hostname")
                or (f"asset {target['asset_id']}" if target.get("asset_id") is not None else "")
                or (row.target_hostname if row else ""),
                "action_class": (row.action_class if row else "") or spec.get("action_class", ""),
                "params": json.dumps(mask_data(spec.get("params") or {}), indent=1, sort_keys=True),
                "status": row.status if row else "",
                "fleet": fleet,
            }
        )
        if fleet:
            out[-1]["target"] = f"{fleet['count']} targets"
    return out


def _fleet(spec: dict[str, Any]) -> dict[str, Any] | None:
    """A fleet step's resolved targets as the approver reads them: the count, the strategy
    and the hosts of each batch, from the snapshot the vote approves (no query)."""
    from execution.plans.strategy import Strategy

    targets = spec.get("targets")
    if not isinstance(targets, list) or not isinstance(spec.get("strategy"), dict):
        return None
    strategy = Strategy.of(spec["strategy"], len(targets))
    return {
        "count": len(targets),
        "strategy": (
            f"{strategy.concurrency} at once, batches of {strategy.batch_size}, "
            f"stops after more than {strategy.max_failures} failed"
            + (f", {strategy.pause_seconds:g} s between batches" if strategy.pause_seconds else "")
        ),
        "batches": [
            [str(targets[i].get("hostname") or targets[i].get("asset_id")) for i in b]
            for b in strategy.batches()
        ],
    }


def _metadata(execution: Any) -> list[tuple[str, str]]:
    """The plan's metadata (ticket, change id, ...) as approvers read it: masked, one line each."""
    data = mask_data(execution.metadata or {})
    if not isinstance(data, dict):
        return []
    return [
        (str(key), value if isinstance(value, str) else json.dumps(value, sort_keys=True))
        for key, value in sorted(data.items())
    ]


def _detail_context(request: HttpRequest, approval: AnyApproval) -> dict[str, Any]:
    votes: list[Any] = list(approval.votes.select_related("voter"))
    own_vote = next((v for v in votes if v.voter_id == request.user.pk), None)
    forbidden = approval_vote_forbidden(approval=approval, voter=request.user)
    expired = approval.expires_at <= timezone.now()
    can_vote = (
        approval.state == ApprovalState.PENDING and not expired and forbidden is None and own_vote is None
    )
    return {
        "approval": approval,
        "execution": approval.execution,
        "metadata": _metadata(approval.execution),
        "gate_message": mask_text(approval.message),
        "steps": _steps(approval),
        "votes": votes,
        "approvals": sum(1 for v in votes if v.decision == ApprovalVote.Decision.APPROVE),
        "time_left": time_left(approval),
        "expired": expired,
        "can_vote": can_vote,
        "own_vote": own_vote,
        "why_not": forbidden.reason if forbidden is not None else "",
    }


@login_required
@require_http_methods(["GET", "POST"])
def approval_detail(request: HttpRequest, approval_id: Any) -> HttpResponse:
    approval = approval_by_id(approval_id)
    if approval is None:
        raise Http404("no such approval")
    page_require(request, policy.Right.READ, what="approval", execution=approval.execution)
    if request.method == "GET":
        return render(request, "approvals/approval_detail.html", _detail_context(request, approval))
    decision = request.POST.get("decision", "")
    comment = request.POST.get("comment", "").strip()[:2000]
    if decision not in ApprovalVote.Decision.values:
        messages.error(request, "Choose approve or reject.")
        return redirect("approvals:detail", approval_id=approval.approval_id)
    try:
        window = form_window(request.POST.get("window_start", ""), request.POST.get("window_end", ""))
        result = approval_vote(
            approval=approval, voter=request.user, decision=decision, comment=comment, window=window
        )
    except VoteInvalid as invalid:
        messages.error(request, f"Vote not recorded: {invalid.reason}.")
        return render(
            request, "approvals/approval_detail.html", _detail_context(request, approval), status=400
        )
    except (VoteForbidden, VoteConflict) as refused:
        # A refused vote (also a forged POST without a button) changes nothing: 403 or 409.
        messages.error(request, f"Vote refused: {refused.reason}.")
        status = 403 if isinstance(refused, VoteForbidden) else 409
        approval.refresh_from_db()
        return render(
            request, "approvals/approval_detail.html", _detail_context(request, approval), status=status
        )
    execution = result.execution
    if result.state == ApprovalState.PENDING:
        text = f"Your {decision} vote is recorded; {result.votes.filter(decision='approve').count()} of "
        text += f"{result.approval_level} approvals so far."
    else:
        text = f"Your {decision} vote decided it: the approval is {result.state} and the execution is "
        text += f"{execution.status}."
    messages.success(request, text)
    return redirect("approvals:detail", approval_id=approval.approval_id)
