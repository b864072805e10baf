"""The admin's confirmed "Requeue" action for dead letters (docs/contract.md#queue-and-workers,
docs/contract.md#rbac: tenant admins only).

For ``DeadLetterAdmin.actions`` (execution/admin/queue.py, owned by the engine): it asks
for confirmation on an intermediate page, then calls the engine's ``dlq_requeue`` for each
selected entry of a tenant where the user is an admin (superusers: any tenant).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from approvals.selectors import tenant_ids_where_admin
from execution.errors import DomainError


@admin.action(description="Requeue selected dead letters (asks for confirmation)")
def requeue_dead_letters(
    model_admin: Any, request: HttpRequest, queryset: QuerySet[Any]
) -> TemplateResponse | None:
    entries = list(queryset.select_related("execution", "execution__tenant"))
    if request.POST.get("confirm") != "yes":
        context = {
            **model_admin.admin_site.each_context(request),
            "title": "Requeue dead letters",
            "opts": model_admin.model._meta,
            "entries": entries,
            "action": "requeue_dead_letters",
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "approvals/admin_dlq_confirm.html", context)
    from execution.services.dlq import dlq_requeue  # the engine's service; imported when used

    admin_of = tenant_ids_where_admin(request.user)
    for entry in entries:
        label = str(entry.execution.execution_id)
        if not (request.user.is_superuser or entry.execution.tenant_id in admin_of):
            model_admin.message_user(
                request, f"{label}: refused, only an admin of the tenant may requeue", messages.ERROR
            )
            continue
        if entry.requeued:
            model_admin.message_user(request, f"{label}: already requeued", messages.WARNING)
            continue
        try:
            execution = dlq_requeue(entry=entry, operator=request.user)
        except DomainError as error:
            model_admin.message_user(request, f"{label}: refused, {error}", messages.ERROR)
            continue
        model_admin.message_user(request, f"{label}: requeued, now {execution.status}", messages.SUCCESS)
    return None
