"""The Django admin's door to the policy: who sees a tenant-scoped admin, and its actions.

Tenant-scoped admins answer ``has_*_permission`` and ``get_queryset`` from the policy
instead of Django's model permissions, so the admin allows exactly what REST and the pages
allow: a staff flag opens the admin, a membership decides what is in it (a superuser too).
"""

from __future__ import annotations

import contextlib
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import get_fields_from_path
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from execution import policy


def staff_tenant_ids(request: HttpRequest, right: policy.Right) -> list[int]:
    """Tenants where the signed-in staff user holds ``right`` by role."""
    user = request.user
    if not (user.is_active and user.is_staff):
        return []
    return policy.tenant_ids_where(user, right)


def admin_require(
    model_admin: Any, request: HttpRequest, right: policy.Right, label: str, **context: Any
) -> bool:
    """``require`` for one object of an admin action; a refusal becomes an error message."""
    try:
        policy.require(request.user, right, door="admin", **context)
    except policy.RightDenied as denied:
        model_admin.message_user(request, f"{label}: refused, {denied.reason}", messages.ERROR)
        return False
    return True


class TenantScopedAdminMixin:
    """Read-only visibility from the policy: ``view_right`` by role, rows of those tenants.

    ``tenant_path`` is the lookup from the model to its tenant id (``tenant_id``,
    ``execution__tenant_id``); ``obj_tenant_path`` the one from the object the
    ``has_*_permission`` methods receive (an inline gets its parent's object).
    """

    model: Any  # provided by the ModelAdmin / InlineModelAdmin this is mixed into
    view_right: policy.Right = policy.Right.READ
    tenant_path: str = "tenant_id"
    obj_tenant_path: str = ""

    def _tenant_of(self, obj: Any) -> int:
        value = obj
        for part in (self.obj_tenant_path or self.tenant_path).split("__"):
            value = getattr(value, part)
        return int(value)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(staff_tenant_ids(request, self.view_right))

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = staff_tenant_ids(request, self.view_right)
        return bool(allowed) and (obj is None or self._tenant_of(obj) in allowed)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset: QuerySet[Any] = super().get_queryset(request)  # type: ignore[misc]
        return queryset.filter(**{f"{self.tenant_path}__in": staff_tenant_ids(request, self.view_right)})

    def get_list_filter(self, request: HttpRequest) -> Any:
        """A filter on a relation (``tenant``, ``execution__tenant``) lists every row of the
        related table — every tenant's slug to a member of one: it lists only the values of
        the rows this user sees (``RelatedOnlyFieldListFilter`` asks ``get_queryset``)."""
        filters = super().get_list_filter(request)  # type: ignore[misc]
        return [
            (entry, admin.RelatedOnlyFieldListFilter)
            if isinstance(entry, str) and get_fields_from_path(self.model, entry)[-1].is_relation
            else entry
            for entry in filters
        ]

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        obj = super().get_object(request, object_id, from_field)  # type: ignore[misc]
        if obj is None:  # not in the user's tenants: recorded when it exists elsewhere
            with contextlib.suppress(ValueError, ValidationError):
                hidden = self.model._default_manager.filter(pk=object_id).first()
                if hidden is not None:
                    self._record_hidden(request, hidden)
        return obj

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        # A member without the right in any tenant is refused here: recorded, then 403.
        user = request.user
        if user.is_active and user.is_staff and not staff_tenant_ids(request, self.view_right):
            from django.core.exceptions import PermissionDenied

            from execution.models import Membership

            tenant_id = Membership.objects.filter(user_id=user.pk).values_list("tenant_id", flat=True).first()
            if tenant_id is not None:
                try:
                    policy.require(user, self.view_right, tenant=tenant_id, door="admin")
                except policy.RightDenied as denied:
                    raise PermissionDenied(denied.reason) from None
        return super().changelist_view(request, extra_context)  # type: ignore[misc]

    def _record_hidden(self, request: HttpRequest, obj: Any) -> None:
        tenant_id = obj
        for part in self.tenant_path.split("__"):
            tenant_id = getattr(tenant_id, part)
        with contextlib.suppress(policy.RightDenied):  # recorded; the row stays out of reach
            policy.require(request.user, self.view_right, tenant=int(tenant_id), door="admin")

    def response_action(self, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        """Rows posted to an action that the user cannot see are refused like at every door:
        recorded (an audit row) and never touched (Django drops them from the queryset)."""
        selected = request.POST.getlist(ACTION_CHECKBOX_NAME)
        try:
            visible = {str(pk) for pk in queryset.filter(pk__in=selected).values_list("pk", flat=True)}
            hidden = list(
                self.model._default_manager.filter(pk__in=[pk for pk in selected if pk not in visible])
            )
        except (ValueError, ValidationError):
            hidden = []
        for obj in hidden:
            self._record_hidden(request, obj)
        return super().response_action(request, queryset)  # type: ignore[misc]


class TenantEditAdminMixin(TenantScopedAdminMixin):
    """Rows of a tenant edited in the admin (members, grants, secrets): ``edit_right`` decides
    add/change/delete, limits the tenant choices and is ``require``d again on save/delete."""

    edit_right: policy.Right = policy.Right.MANAGE_MEMBERS

    def _may_edit(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = staff_tenant_ids(request, self.edit_right)
        return bool(allowed) and (obj is None or self._tenant_of(obj) in allowed)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_edit(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_edit(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_edit(request, obj)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "tenant":
            from execution.models import Tenant

            kwargs["queryset"] = Tenant.objects.filter(pk__in=staff_tenant_ids(request, self.edit_right))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]

    def _require_edit(self, request: HttpRequest, obj: Any) -> None:
        self._require_tenant(request, self._tenant_of(obj))

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:  # moving a row out of a tenant needs the right there too
            self._require_edit(request, type(obj).objects.get(pk=obj.pk))
        self._require_edit(request, obj)
        super().save_model(request, obj, form, change)  # type: ignore[misc]

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self._require_edit(request, obj)
        super().delete_model(request, obj)  # type: ignore[misc]

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: Any = None,
    ) -> Any:
        # A refused post is recorded before Django's own 403 (add: the posted tenant).
        if request.method == "POST":
            obj = self.get_object(request, object_id) if object_id else None
            if obj is None and not object_id and request.POST.get("tenant", "").isdigit():
                tenant_id = int(request.POST["tenant"])
                if tenant_id not in staff_tenant_ids(request, self.edit_right):
                    self._require_tenant(request, tenant_id)
            elif obj is not None and not self._may_edit(request, obj):
                self._require_edit(request, obj)
        return super().changeform_view(request, object_id, form_url, extra_context)  # type: ignore[misc]

    def _require_tenant(self, request: HttpRequest, tenant_id: int) -> None:
        from django.core.exceptions import PermissionDenied

        try:
            policy.require(request.user, self.edit_right, tenant=tenant_id, door="admin")
        except policy.RightDenied as denied:
            raise PermissionDenied(denied.reason) from None
