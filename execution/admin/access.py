"""The Django admin's door to the policy, and the admins that are for superusers only.

Every registered admin is one of two kinds (a test walks ``admin.site._registry``):

- a :class:`~execution.admin.scoped.TenantScopedAdmin`, for anything a tenant holds
  (directly or through a foreign key): what it lists, offers in a form, finds by id and
  lets an action touch comes from the policy (``door="admin"``), never from Django's model
  permissions; a staff flag opens the admin, a membership decides what is in it;
- a :class:`SuperuserOnlyAdmin`, for what belongs to the installation (tenants, timeout
  policies, worker heartbeats, the dead-letter archive, Django's users and groups, the
  libraries' own admins): only an active superuser sees it, whatever model permissions a
  staff user was given.

In the admin a superuser holds every right but voting in every tenant (the policy's
``every_tenant``): it is their all-tenant tool. Everywhere else they act through memberships.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest

from execution import policy
from execution.admin.input import CheckedModelAdmin

ADMIN_DOOR = "admin"


def staff_tenant_ids(request: HttpRequest, right: policy.Right) -> list[int]:
    """Tenants where the signed-in staff user holds ``right`` in the admin. Kept for the
    request: a changelist asks the ``has_*_permission`` methods dozens of times."""
    user = request.user
    if not (user.is_active and user.is_staff):
        return []
    memo: dict[policy.Right, list[int]] = request.__dict__.setdefault("_admin_tenant_ids", {})
    if right not in memo:
        memo[right] = policy.tenant_ids_where(user, right, door=ADMIN_DOOR)
    return memo[right]


def every_tenant(request: HttpRequest, right: policy.Right) -> bool:
    """Whether ``right`` holds in every tenant here (a superuser in their all-tenant tool)."""
    user = request.user
    return bool(user.is_staff) and policy.every_tenant(user, right, door=ADMIN_DOOR)


def admin_require(
    model_admin: Any, request: HttpRequest, right: policy.Right, label: str, **context: Any
) -> bool:
    """``require`` for one object of an admin action; a refusal becomes an error message."""
    try:
        policy.require(request.user, right, door=ADMIN_DOOR, **context)
    except policy.RightDenied as denied:
        model_admin.message_user(request, f"{label}: refused, {denied.reason}", messages.ERROR)
        return False
    return True


class ReadOnlyAdminMixin:
    """Append-only or worker-owned rows: visible, never edited by hand."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def is_superuser(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and user.is_staff and user.is_superuser)


class SuperuserOnlyMixin:
    """Only an active superuser gets past any ``has_*_permission``; what the admin class
    itself allows a superuser (read-only rows stay read-only) still holds."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_superuser(request) and super().has_module_permission(request)  # type: ignore[misc]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_superuser(request) and super().has_view_permission(request, obj)  # type: ignore[misc]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        # ModelAdmin.has_add_permission(request), InlineModelAdmin's (request, obj)
        return is_superuser(request) and super().has_add_permission(request, *args)  # type: ignore[misc]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_superuser(request) and super().has_change_permission(request, obj)  # type: ignore[misc]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_superuser(request) and super().has_delete_permission(request, obj)  # type: ignore[misc]


class SuperuserOnlyAdmin(SuperuserOnlyMixin, CheckedModelAdmin):
    """The installation's own things: tenants, timeout policies, workers, the archive."""


def superuser_only(admin_class: type[Any]) -> type[Any]:
    """``admin_class`` (a library's admin, or one of ours built on neither base) made
    superuser-only and given the checked input handling (a forged action key is a 400)."""
    if issubclass(admin_class, SuperuserOnlyMixin):
        return admin_class
    bases: tuple[type[Any], ...] = (SuperuserOnlyMixin, admin_class)
    if not issubclass(admin_class, CheckedModelAdmin):
        bases = (SuperuserOnlyMixin, CheckedModelAdmin, admin_class)
    return type(f"SuperuserOnly{admin_class.__name__}", bases, {"__module__": admin_class.__module__})
