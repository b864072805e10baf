"""Admin for tenants, memberships, grants and the audit log."""

from __future__ import annotations

from django.contrib import admin

from execution.admin.executions import ReadOnlyAdminMixin
from execution.models import AccessGrant, AuditLog, Membership, Tenant


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "tenant", "role", "can_submit_on_behalf", "created_at"]
    list_filter = ["tenant", "role", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["user__username", "tenant__slug"]


@admin.register(AccessGrant)
class AccessGrantAdmin(admin.ModelAdmin):
    list_display = ["tenant", "user", "group", "asset_pattern", "asset_tag", "action_class", "environment"]
    list_filter = ["tenant", "action_class", "environment"]


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "tenant", "actor", "event_type", "reason"]
    list_filter = ["event_type", "tenant", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["reason", "actor__username"]
