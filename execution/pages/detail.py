"""``/executions/<id>/``: one execution, its whole history, then live (docs/contract.md#live-progress,
docs/contract.md#operator-console).

Also the page's actions: cancel, Run again (a new execution of the same plan under the
caller's own rights, linked by ``parent_execution_id``) and the output download.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from approvals.models import Approval
from execution import policy
from execution.enums import FINISHED_STATUSES, ExecutionStatus
from execution.errors import DomainError
from execution.models import Execution, ExecutionStep
from execution.pages.access import page_allows, page_require
from execution.pages.fleet import fleet_grids, fleet_statuses
from execution.pages.history import (
    cancel_reason,
    execution_history,
    history_messages,
    lock_waiting,
    output_text,
)
from execution.plans import PlanInvalid
from execution.services.cancel import execution_cancel
from execution.services.progress import progress_for
from execution.services.submit import SubmitDenied, execution_submit


def visible_execution(
    request: HttpRequest, execution_id: uuid.UUID, right: policy.Right = policy.Right.READ
) -> Execution:
    """The execution if the user holds ``right`` on it: another tenant's is a 404, a missing
    right a 403 (both recorded by the policy)."""
    execution = Execution.objects.select_related("tenant", "actor").filter(execution_id=execution_id).first()
    if execution is None:
        raise Http404("No such execution")
    page_require(request, right, what="execution", execution=execution)
    return execution


def _step_rows(execution: Execution) -> list[dict[str, Any]]:
    finished = execution.status in FINISHED_STATUSES
    rows = []
    for step in ExecutionStep.objects.filter(execution__execution_id=execution.execution_id).order_by(
        "step_index"
    ):
        status = step.status
        # A step that never started in a finished execution (rejected, cancelled before it,
        # or after an earlier failure) did not run: say so instead of "queued" or the
        # "cancelled" its row holds (docs/contract.md#cancellation), as the live page does.
        never_started = status == ExecutionStatus.QUEUED or (
            status == ExecutionStatus.CANCELLED and step.started_at is None
        )
        shown = "not_run" if finished and never_started else status
        duration = f"{step.duration_ms / 1000:.2f} s" if step.duration_ms is not None else ""
        rows.append({"step": step, "status": shown, "duration": duration})
    return rows


def progress_bar(execution: Execution, steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The bar as the page's script draws it, so the first paint already matches it.

    A finished execution's bar is the share of steps that *completed*, coloured by the
    outcome: a failed one-step run is an empty red bar, never a full blue one.
    """
    if execution.status not in FINISHED_STATUSES:
        progress = progress_for(execution=execution)
        text = f"{progress['percent']}% · {progress['steps_done']}/{progress['steps_total']} steps"
        if "targets_total" in progress:
            text += f" · {progress['targets_done']}/{progress['targets_total']} targets"
        return {"percent": progress["percent"], "outcome": "", "text": text}
    total = len(steps)
    completed = sum(1 for s in steps if s["status"] == ExecutionStatus.COMPLETED)
    failed = sum(1 for s in steps if s["status"] in (ExecutionStatus.FAILED, ExecutionStatus.TIMEOUT))
    percent = completed * 100 // total if total else 0
    if execution.status == ExecutionStatus.COMPLETED:
        percent = 100
    text = f"{execution.status} · {completed}/{total} steps completed"
    if failed:
        text += f" · {failed} failed"
    return {"percent": percent, "outcome": execution.status, "text": text}


def _approval(execution: Execution) -> tuple[Approval | None, list[Any]]:
    approval = (
        Approval.objects.filter(execution__execution_id=execution.execution_id)
        .select_related("approver")
        .first()
    )
    if approval is None:
        return None, []
    return approval, list(approval.votes.select_related("voter").order_by("created_at", "id"))


@login_required
def execution_detail_page(request: HttpRequest, execution_id: uuid.UUID) -> HttpResponse:
    execution = visible_execution(request, execution_id)
    events = execution_history(execution=execution)
    steps = _step_rows(execution)
    fleet = fleet_grids(execution, {s["step"].step_index: s["status"] for s in steps})
    totals = {grid["index"]: grid["total"] for grid in fleet}
    for item in steps:
        item["targets"] = totals.get(item["step"].step_index)
    approval, votes = _approval(execution)
    parent = None
    if execution.parent_execution_id:
        parent = Execution.objects.filter(
            execution_id=execution.parent_execution_id, tenant_id=execution.tenant_id
        ).first()
    context = {
        "execution": execution,
        "plan_name": (execution.plan_snapshot or {}).get("name", ""),
        "steps": steps,
        "fleet": fleet,
        "bar": progress_bar(execution, steps),
        "history": history_messages(events),
        "after": events[-1].pk if events else 0,
        "approval": approval,
        "votes": votes,
        "cancel_reason": cancel_reason(events),
        "lock_wait": lock_waiting(execution, events),
        "parent": parent,
        "children": list(
            Execution.objects.filter(
                parent_execution_id=execution.execution_id, tenant_id=execution.tenant_id
            )
            .order_by("-created_at")
            .values("execution_id", "status", "created_at")[:10]
        ),
        "can_cancel": execution.status not in FINISHED_STATUSES
        and page_allows(request, policy.Right.CANCEL, execution=execution),
        # The same plan again: would the policy let this user submit it (the service decides)?
        "can_run_again": page_allows(
            request, policy.Right.SUBMIT, execution=execution, assets=policy.targets_of(execution)
        ),
    }
    return render(request, "executions/detail.html", context)


@login_required
def execution_fleet_statuses(request: HttpRequest, execution_id: uuid.UUID, step_index: int) -> JsonResponse:
    """``{"statuses": [...]}``: a fleet step's target statuses by target index, for the page's
    grid while the step runs (a target's start has no event). The page's read right, as the
    page itself; 404 for a step that is no fleet step."""
    execution = visible_execution(request, execution_id)
    statuses = fleet_statuses(execution, step_index)
    if statuses is None:
        raise Http404("No such fleet step")
    return JsonResponse({"statuses": statuses})


@login_required
@require_POST
def execution_cancel_page(request: HttpRequest, execution_id: uuid.UUID) -> HttpResponse:
    execution = visible_execution(request, execution_id, policy.Right.CANCEL)
    try:
        execution_cancel(execution=execution, actor=request.user, reason=request.POST.get("reason", ""))
    except DomainError as exc:
        messages.error(request, f"Not cancelled: {exc}")
    else:
        messages.success(request, "Cancellation requested.")
    return redirect("execution_page", execution_id=execution.execution_id)


@login_required
@require_POST
def execution_run_again_page(request: HttpRequest, execution_id: uuid.UUID) -> HttpResponse:
    """Submit the same plan again as the caller, with a fresh idempotency key.

    The submit service decides (the caller's rights, approval level, classification): a
    viewer is refused there and the refusal is audited like any other submission.
    """
    original = visible_execution(request, execution_id)
    try:
        outcome = execution_submit(
            tenant=original.tenant,
            actor=request.user,
            plan=original.plan_snapshot,
            approval_level=original.approval_level,
            sla_class=original.sla_class,
            priority=original.priority,
            dry_run=original.dry_run,
            tags=list(original.tags or []),
            metadata=dict(original.metadata or {}),
            parent_execution_id=original.execution_id,
            # A fresh key: a run again is a new execution, never an idempotent replay.
            idempotency_header=f"run-again:{uuid.uuid4()}",
            # The new execution's page follows it live: the request never waits for a worker
            # (it held the page for the immediate wait, up to IMMEDIATE_WAIT_SECONDS).
            wait=False,
        )
    except SubmitDenied as denied:
        messages.error(request, f"Run again refused: {denied.reason}")
        return redirect("execution_page", execution_id=original.execution_id)
    except (PlanInvalid, DomainError) as error:
        messages.error(request, f"Run again refused: {error}")
        return redirect("execution_page", execution_id=original.execution_id)
    messages.success(request, f"Started again as {outcome.execution.execution_id}.")
    return redirect("execution_page", execution_id=outcome.execution.execution_id)


@login_required
def execution_output_download(request: HttpRequest, execution_id: uuid.UUID) -> HttpResponse:
    """The stored (masked) output of every step and attempt as one text file."""
    execution = visible_execution(request, execution_id)
    text = output_text(execution=execution, events=execution_history(execution=execution))
    response = HttpResponse(text, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="execution-{execution.execution_id}.txt"'
    return response
