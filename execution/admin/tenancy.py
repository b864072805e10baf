"""Admin for tenants (superusers only), memberships, grants and the audit log (tenant-scoped).

Memberships change through the members service only (execution/services/members.py), as on
the members page: the subject rule, the last admin, the audit row, the role's start for four
eyes and the notice to the tenant's admins are the service's, whatever the door.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

from execution import policy
from execution.admin.access import SuperuserOnlyAdmin
from execution.admin.scoped import TenantScopedAdmin
from execution.models import AccessGrant, AuditLog, Membership, Tenant
from execution.services.members import (
    MemberChangeRefused,
    membership_add,
    membership_remove,
    membership_set_on_behalf,
    membership_set_role,
)


class MembershipInline(admin.TabularInline):  # type: ignore[type-arg]
    """A tenant's members, listed on its page; they change on the memberships' own pages
    (through the members service)."""

    model = Membership
    extra = 0
    fields = ("user", "role", "can_submit_on_behalf", "role_since")
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Tenant)
class TenantAdmin(SuperuserOnlyAdmin):
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    view_right = edit_right = policy.Right.MANAGE_MEMBERS
    list_display = ["user", "tenant", "role", "can_submit_on_behalf", "role_since", "created_at"]
    list_filter = ["tenant", "role", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["user__username", "tenant__slug"]
    fields = ["tenant", "user", "role", "can_submit_on_behalf", "role_since", "created_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fixed = ["role_since", "created_at"]
        if obj is not None:
            fixed += ["tenant", "user"]  # a membership is not moved: remove it, add another
        if policy.on_behalf_refusal(request.user):
            fixed.append("can_submit_on_behalf")  # a superuser's grant only
        return fixed

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: Any = None,
    ) -> Any:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except MemberChangeRefused as refused:  # the last admin stays, ...: nothing was saved
            return _refused(refused)

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> Any:
        try:
            return super().delete_view(request, object_id, extra_context)
        except MemberChangeRefused as refused:
            return _refused(refused)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        self.require_save(request, obj, change)
        try:
            if not change:
                added = membership_add(
                    tenant=obj.tenant,
                    actor=request.user,
                    username=obj.user.get_username(),
                    role=obj.role,
                    door="admin",
                )
                obj.pk, obj.role_since, obj.created_at = added.pk, added.role_since, added.created_at
            elif "role" in form.changed_data:
                membership_set_role(membership=obj, actor=request.user, role=obj.role, door="admin")
            if "can_submit_on_behalf" in form.changed_data:
                membership_set_on_behalf(
                    membership=obj, actor=request.user, allowed=obj.can_submit_on_behalf, door="admin"
                )
        except policy.RightDenied as denied:
            raise PermissionDenied(denied.reason) from None

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self._require_edit(request, obj)
        membership_remove(membership=obj, actor=request.user, door="admin")

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for membership in queryset.select_related("tenant", "user"):
            try:
                self.delete_model(request, membership)
            except MemberChangeRefused as refused:
                self.message_user(request, f"{membership}: refused, {refused}", messages.ERROR)


def _refused(refused: MemberChangeRefused) -> HttpResponse:
    return HttpResponseBadRequest(f"Refused: {refused}", content_type="text/plain; charset=utf-8")


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
