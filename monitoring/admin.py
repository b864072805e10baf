"""SLA alerts in the admin: read-only (the sweeper writes them, nobody edits them)."""

from __future__ import annotations

from django.contrib import admin

from execution.admin.scoped import TenantScopedAdmin
from monitoring.models import SlaAlert


@admin.register(SlaAlert)
class SlaAlertAdmin(TenantScopedAdmin):
    # Members see their tenants' alerts on /monitoring/ (the policy's READ); read-only here.
    list_display = (
        "detected_at",
        "kind",
        "execution_id",
        "tenant",
        "sla_class",
        "limit_seconds",
        "observed_seconds",
    )
    list_filter = ("kind", "sla_class", "tenant")
    search_fields = ("execution__execution_id", "message")
    date_hierarchy = "detected_at"
    list_select_related = ("tenant",)


# Notification subscriptions and deliveries register themselves (tenant-scoped admins).
from monitoring.notifications import admin as notifications_admin  # noqa: E402, F401
