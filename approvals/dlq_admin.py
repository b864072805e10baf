"""The admin's confirmed "Requeue" and "Archive" actions for dead letters
(docs/contract.md#queue-and-workers, docs/contract.md#rbac).

For ``DeadLetterAdmin.actions`` (execution/admin/queue.py): each asks for confirmation on an
intermediate page, then ``require``s the right (REQUEUE or ARCHIVE: tenant admins) for each
selected entry and calls the dead-letter service; a refusal is recorded and shown.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from execution import policy
from execution.admin.access import admin_require
from execution.errors import DomainError
from execution.services import dlq as dlq_service


def _confirm(
    model_admin: Any, request: HttpRequest, entries: list[Any], action: str, verb: str
) -> TemplateResponse:
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"{verb.title()} dead letters",
        "opts": model_admin.model._meta,
        "entries": entries,
        "action": action,
        "verb": verb,
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "approvals/admin_dlq_confirm.html", context)


@admin.action(description="Requeue selected dead letters (asks for confirmation)")
def requeue_dead_letters(
    model_admin: Any, request: HttpRequest, queryset: QuerySet[Any]
) -> TemplateResponse | None:
    entries = list(queryset.select_related("execution", "execution__tenant"))
    if request.POST.get("confirm") != "yes":
        return _confirm(model_admin, request, entries, "requeue_dead_letters", "requeue")
    for entry in entries:
        label = str(entry.execution.execution_id)
        if not admin_require(model_admin, request, policy.Right.REQUEUE, label, execution=entry.execution):
            continue
        if entry.requeued:
            model_admin.message_user(request, f"{label}: already requeued", messages.WARNING)
            continue
        try:
            execution = dlq_service.dlq_requeue(entry=entry, operator=request.user)
        except DomainError as error:
            model_admin.message_user(request, f"{label}: refused, {error}", messages.ERROR)
            continue
        model_admin.message_user(request, f"{label}: requeued, now {execution.status}", messages.SUCCESS)
    return None


@admin.action(description="Archive selected dead letters (asks for confirmation)")
def archive_dead_letters(
    model_admin: Any, request: HttpRequest, queryset: QuerySet[Any]
) -> TemplateResponse | None:
    entries = list(queryset.select_related("execution", "execution__tenant"))
    if request.POST.get("confirm") != "yes":
        return _confirm(model_admin, request, entries, "archive_dead_letters", "archive")
    for entry in entries:
        label = str(entry.execution.execution_id)
        if not admin_require(model_admin, request, policy.Right.ARCHIVE, label, execution=entry.execution):
            continue
        try:
            dlq_service.dlq_archive(entry=entry, operator=request.user)
        except DomainError as error:
            model_admin.message_user(request, f"{label}: refused, {error}", messages.ERROR)
            continue
        model_admin.message_user(request, f"{label}: archived", messages.SUCCESS)
    return None
