"""Archived dead letters (kept after retention pruned their executions): read-only, for
superusers only (the archive outlives the tenants' executions; no page of a tenant shows it)."""

from __future__ import annotations

from django.contrib import admin

from execution.admin.access import ReadOnlyAdminMixin, SuperuserOnlyAdmin
from execution.models import DeadLetterArchive


@admin.register(DeadLetterArchive)
class DeadLetterArchiveAdmin(ReadOnlyAdminMixin, SuperuserOnlyAdmin):
    list_display = [
        "failed_at",
        "tenant_id",
        "plan_name",
        "environment",
        "final_status",
        "failure_reason",
        "attempt_count",
    ]
    list_filter = ["failure_reason", "final_status", "environment"]
    search_fields = ["=execution_id", "plan_name", "last_error"]
    date_hierarchy = "failed_at"
