"""Concurrency limits in the admin (docs/contract.md#concurrency-limits)."""

from __future__ import annotations

from django.contrib import admin

from execution import policy
from execution.admin.scoped import TenantScopedAdmin
from execution.models import ConcurrencyLimit


@admin.register(ConcurrencyLimit)
class ConcurrencyLimitAdmin(TenantScopedAdmin):
    view_right = edit_right = policy.Right.CONFIGURE
    list_display = ["tenant", "environment", "max_running", "description", "updated_at"]
    list_filter = ["tenant", "environment"]
    list_editable = ["max_running"]
    search_fields = ["tenant__slug", "description"]
