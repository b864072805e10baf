"""Operator pages of §11: the executions of the user's tenants and one execution, live.

Thin adapters: they read through the realtime reader/progress services and render; the
browser then follows the WebSocket from the newest event id the page was rendered with.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from execution.enums import FINISHED_STATUSES, ExecutionStatus
from execution.errors import DomainError
from execution.models import Execution, ExecutionEvent, ExecutionStep, Tenant
from execution.realtime.access import can_cancel, watchable_tenant_ids
from execution.realtime.reader import stream_head
from execution.services.progress import progress_for

LIST_LIMIT = 100
OUTPUT_PAGE_LIMIT = 64 * 1024  # characters of earlier output rendered per step


def _visible_execution(request: HttpRequest, execution_id: uuid.UUID) -> Execution:
    execution = (
        Execution.objects.select_related("tenant", "actor")
        .filter(execution_id=execution_id, tenant_id__in=watchable_tenant_ids(request.user))
        .first()
    )
    if execution is None:
        raise Http404("No such execution")  # another tenant's execution is simply unknown
    return execution


@login_required
def executions_list_page(request: HttpRequest) -> HttpResponse:
    tenant_ids = watchable_tenant_ids(request.user)
    # Stream heads first, rows second: whatever changes in between is replayed by the socket.
    tenants = [
        {"slug": t.slug, "after": stream_head(tenant_id=t.pk)}
        for t in Tenant.objects.filter(pk__in=tenant_ids).order_by("slug")
    ]
    executions = list(
        Execution.objects.select_related("tenant", "actor")
        .filter(tenant_id__in=tenant_ids)
        .order_by("-created_at", "-id")[:LIST_LIMIT]
    )
    for execution in executions:  # progress only where it moves; the socket keeps it current
        running = execution.status == ExecutionStatus.RUNNING
        execution.live_progress = progress_for(execution=execution) if running else None  # type: ignore[attr-defined]
    return render(request, "executions/list.html", {"tenants": tenants, "executions": executions})


@login_required
def execution_detail_page(request: HttpRequest, execution_id: uuid.UUID) -> HttpResponse:
    execution = _visible_execution(request, execution_id)
    after = stream_head(execution_id=execution.execution_id)
    output: dict[int, list[str]] = {}
    sizes: dict[int, int] = {}
    chunks = (
        ExecutionEvent.objects.filter(
            execution__execution_id=execution.execution_id, event_type="step_output", pk__lte=after
        )
        .order_by("pk")
        .values_list("step_index", "details")
    )
    for step_index, details in chunks:
        text = str((details or {}).get("text", ""))
        if step_index is None or sizes.get(step_index, 0) + len(text) > OUTPUT_PAGE_LIMIT:
            continue
        output.setdefault(step_index, []).append(text)
        sizes[step_index] = sizes.get(step_index, 0) + len(text)
    steps: list[dict[str, Any]] = [
        {"step": step, "output": "".join(output.get(step.step_index, []))}
        for step in ExecutionStep.objects.filter(execution__execution_id=execution.execution_id).order_by(
            "step_index"
        )
    ]
    context = {
        "execution": execution,
        "plan_name": (execution.plan_snapshot or {}).get("name", ""),
        "steps": steps,
        "progress": progress_for(execution=execution),
        "after": after,
        "can_cancel": execution.status not in FINISHED_STATUSES and can_cancel(request.user, execution),
    }
    return render(request, "executions/detail.html", context)


@login_required
@require_POST
def execution_cancel_page(request: HttpRequest, execution_id: uuid.UUID) -> HttpResponse:
    execution = _visible_execution(request, execution_id)
    if not can_cancel(request.user, execution):
        raise PermissionDenied("You may not cancel this execution.")
    try:
        from execution.services.cancel import execution_cancel  # the engine's service
    except ImportError:
        messages.error(request, "Cancellation is not available in this build.")
        return redirect("execution_page", execution_id=execution.execution_id)
    try:
        execution_cancel(execution=execution, actor=request.user)
    except DomainError as exc:
        messages.error(request, f"Not cancelled: {exc}")
    else:
        messages.success(request, "Cancellation requested.")
    return redirect("execution_page", execution_id=execution.execution_id)
