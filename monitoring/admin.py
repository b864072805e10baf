"""SLA alerts in the admin: read-only (the sweeper writes them, nobody edits them)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from execution.admin.input import CheckedModelAdmin
from monitoring.models import SlaAlert


@admin.register(SlaAlert)
class SlaAlertAdmin(CheckedModelAdmin):
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

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# Notification subscriptions and deliveries register themselves (tenant-scoped admins).
from monitoring.notifications import admin as notifications_admin  # noqa: E402, F401
