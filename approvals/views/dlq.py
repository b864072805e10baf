"""``/dlq/``: dead letters of the user's tenants; tenant admins requeue them."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from approvals.selectors import dead_letters_visible_to, tenant_ids_where_admin
from execution.errors import DomainError


@login_required
def dlq_list(request: HttpRequest) -> HttpResponse:
    admin_of = tenant_ids_where_admin(request.user)
    entries = []
    for entry in dead_letters_visible_to(request.user)[:200]:
        is_admin = entry.execution.tenant_id in admin_of
        why_not = ""
        if entry.requeued:
            why_not = "already requeued"
        elif not is_admin:
            why_not = f"only an admin of {entry.execution.tenant.slug} may requeue"
        entries.append({"entry": entry, "can_requeue": not why_not, "why_not": why_not})
    return render(request, "approvals/dlq_list.html", {"entries": entries})


@login_required
@require_POST
def dlq_requeue_view(request: HttpRequest, dlq_id: Any) -> HttpResponse:
    entry = dead_letters_visible_to(request.user).filter(dlq_id=dlq_id).first()
    if entry is None:
        raise Http404("no such dead letter")
    if entry.execution.tenant_id not in tenant_ids_where_admin(request.user):
        messages.error(request, "Requeue refused: only an admin of the tenant may requeue dead letters.")
        return _list_with_status(request, 403)
    if entry.requeued:
        messages.error(request, "Requeue refused: this dead letter was already requeued.")
        return _list_with_status(request, 409)
    from execution.services.dlq import dlq_requeue  # the engine's service; imported when used

    try:
        execution = dlq_requeue(entry=entry, operator=request.user)
    except DomainError as error:
        messages.error(request, f"Requeue refused: {error}.")
        return _list_with_status(request, 409)
    messages.success(request, f"Execution {execution.execution_id} requeued; it is now {execution.status}.")
    return redirect("approvals:dlq")


def _list_with_status(request: HttpRequest, status: int) -> HttpResponse:
    response = dlq_list(request)
    response.status_code = status
    return response
