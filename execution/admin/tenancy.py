"""Admin for tenants, memberships, grants and the audit log."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from execution import policy
from execution.admin.access import TenantEditAdminMixin
from execution.admin.executions import ReadOnlyAdminMixin
from execution.admin.input import CheckedModelAdmin
from execution.models import AccessGrant, AuditLog, Membership, Tenant


class MembershipInline(admin.TabularInline):
    """Members edited on their tenant's page: the policy's MANAGE_MEMBERS for that tenant."""

    model = Membership
    extra = 0
    autocomplete_fields = ["user"]

    def _may(self, request: HttpRequest, obj: Any) -> bool:
        if obj is None:
            return bool(policy.tenant_ids_where(request.user, policy.Right.MANAGE_MEMBERS))
        return policy.decide(request.user, policy.Right.MANAGE_MEMBERS, tenant=obj).allowed

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, obj)


@admin.register(Tenant)
class TenantAdmin(CheckedModelAdmin):
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(TenantEditAdminMixin, CheckedModelAdmin):
    view_right = edit_right = policy.Right.MANAGE_MEMBERS
    list_display = ["user", "tenant", "role", "can_submit_on_behalf", "created_at"]
    list_filter = ["tenant", "role", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["user__username", "tenant__slug"]


@admin.register(AccessGrant)
class AccessGrantAdmin(TenantEditAdminMixin, CheckedModelAdmin):
    # Grants are policy edits: the same right as members.
    view_right = edit_right = policy.Right.MANAGE_MEMBERS
    list_display = ["tenant", "user", "group", "asset_pattern", "asset_tag", "action_class", "environment"]
    list_filter = ["tenant", "action_class", "environment"]


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdminMixin, CheckedModelAdmin):
    list_display = ["created_at", "tenant", "actor", "event_type", "reason"]
    list_filter = ["event_type", "tenant", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["reason", "actor__username"]
