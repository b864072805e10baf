"""``/dlq/``: dead letters of the user's tenants; tenant admins requeue them."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from execution import policy
from execution.errors import DomainError
from execution.models import DeadLetter
from execution.selectors import dead_letters_visible_to
from execution.services import dlq as dlq_service


@login_required
def dlq_list(request: HttpRequest) -> HttpResponse:
    # REQUEUE is decided by role alone: the set form of the policy marks the buttons.
    requeue_in = set(policy.tenant_ids_where(request.user, policy.Right.REQUEUE))
    entries = []
    for entry in (
        dead_letters_visible_to(request.user).filter(archived=False).order_by("requeued", "-failed_at")[:200]
    ):
        why_not = ""
        if entry.requeued:
            why_not = "already requeued"
        elif entry.execution.tenant_id not in requeue_in:
            why_not = f"only an admin of {entry.execution.tenant.slug} may requeue"
        entries.append({"entry": entry, "can_requeue": not why_not, "why_not": why_not})
    return render(request, "approvals/dlq_list.html", {"entries": entries})


@login_required
@require_POST
def dlq_requeue_view(request: HttpRequest, dlq_id: Any) -> HttpResponse:
    entry = DeadLetter.objects.select_related("execution", "execution__tenant").filter(dlq_id=dlq_id).first()
    if entry is None:
        raise Http404("no such dead letter")
    try:
        policy.require(request.user, policy.Right.REQUEUE, execution=entry.execution, door="page")
    except policy.RightDenied as denied:
        if denied.hidden:
            raise Http404("no such dead letter") from None
        messages.error(request, f"Requeue refused: {denied.reason}.")
        return _list_with_status(request, 403)
    if entry.requeued:
        messages.error(request, "Requeue refused: this dead letter was already requeued.")
        return _list_with_status(request, 409)
    try:
        execution = dlq_service.dlq_requeue(entry=entry, operator=request.user)
    except DomainError as error:
        messages.error(request, f"Requeue refused: {error}.")
        return _list_with_status(request, 409)
    messages.success(request, f"Execution {execution.execution_id} requeued; it is now {execution.status}.")
    return redirect("approvals:dlq")


def _list_with_status(request: HttpRequest, status: int) -> HttpResponse:
    response = dlq_list(request)
    response.status_code = status
    return response
