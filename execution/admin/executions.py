"""Admin for executions, their steps and their (read-only) events."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from execution import policy
from execution.admin.access import admin_require
from execution.admin.scoped import TenantScopedAdmin, TenantScopedInline
from execution.errors import DomainError
from execution.models import Execution, ExecutionEvent, ExecutionStep
from execution.services.cancel import execution_cancel


class StepInline(TenantScopedInline):
    obj_tenant_path = "tenant_id"
    model = ExecutionStep
    extra = 0
    _columns = (
        "step_index",
        "step_name",
        "step_type",
        "target_hostname",
        "status",
        "duration_ms",
        "retry_count",
    )
    fields = _columns
    readonly_fields = _columns
    show_change_link = True


@admin.register(Execution)
class ExecutionAdmin(TenantScopedAdmin):
    list_display = [
        "execution_id",
        "tenant",
        "status",
        "environment",
        "action_class",
        "sla_class",
        "approval_level",
        "priority",
        "actor",
        "created_at",
    ]
    list_filter = [
        "tenant",
        "status",
        "environment",
        "action_class",
        "sla_class",
        ("created_at", admin.DateFieldListFilter),
    ]
    search_fields = ["=execution_id", "idempotency_key", "trace_id"]
    date_hierarchy = "created_at"
    list_select_related = ["tenant", "actor"]
    inlines = [StepInline]
    actions = ["cancel_selected"]

    @admin.action(description="Cancel selected executions")
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[Execution]) -> None:
        for execution in queryset:
            label = str(execution.execution_id)
            if not admin_require(self, request, policy.Right.CANCEL, label, execution=execution):
                continue
            try:
                execution = execution_cancel(execution=execution, actor=request.user)
            except DomainError as error:
                self.message_user(request, f"{label}: refused, {error}", messages.ERROR)
                continue
            self.message_user(request, f"{label}: {execution.status}", messages.SUCCESS)


@admin.register(ExecutionStep)
class ExecutionStepAdmin(TenantScopedAdmin):
    list_display = [
        "execution",
        "step_index",
        "step_name",
        "step_type",
        "status",
        "duration_ms",
        "started_at",
    ]
    list_filter = ["status", "step_type", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["=execution__execution_id", "step_name", "target_hostname"]


@admin.register(ExecutionEvent)
class ExecutionEventAdmin(TenantScopedAdmin):
    list_display = [
        "id",
        "execution",
        "event_type",
        "from_status",
        "to_status",
        "actor_type",
        "actor",
        "created_at",
    ]
    list_filter = ["event_type", "actor_type", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["=execution__execution_id", "event_type"]
    date_hierarchy = "created_at"
