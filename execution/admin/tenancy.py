"""Admin for tenants (superusers only), memberships, grants and the audit log (tenant-scoped)."""

from __future__ import annotations

from django.contrib import admin

from execution import policy
from execution.admin.access import SuperuserOnlyAdmin
from execution.admin.scoped import TenantScopedAdmin
from execution.models import AccessGrant, AuditLog, Membership, Tenant


class MembershipInline(admin.TabularInline):  # type: ignore[type-arg]
    """Members edited on their tenant's page (a superuser's: the bootstrap of a tenant)."""

    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Tenant)
class TenantAdmin(SuperuserOnlyAdmin):
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    view_right = edit_right = policy.Right.MANAGE_MEMBERS
    list_display = ["user", "tenant", "role", "can_submit_on_behalf", "created_at"]
    list_filter = ["tenant", "role", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["user__username", "tenant__slug"]


@admin.register(AccessGrant)
class AccessGrantAdmin(TenantScopedAdmin):
    # Grants are policy edits: the same right as members.
    view_right = edit_right = policy.Right.MANAGE_MEMBERS
    list_display = ["tenant", "user", "group", "asset_pattern", "asset_tag", "action_class", "environment"]
    list_filter = ["tenant", "action_class", "environment"]


@admin.register(AuditLog)
class AuditLogAdmin(TenantScopedAdmin):
    # What members read on /audit/ (the policy's READ); rows of no tenant: superusers only.
    list_display = ["created_at", "tenant", "actor", "event_type", "reason"]
    list_filter = ["event_type", "tenant", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["reason", "actor__username"]
