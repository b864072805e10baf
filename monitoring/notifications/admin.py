"""Subscriptions and deliveries in the admin, scoped to the tenants the user administers.

Staff tenant admins use it without model permissions of their own (like the approvals
admin): what they see and edit is limited to their tenants by the querysets and the form.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from execution.admin.executions import ReadOnlyAdminMixin
from execution.admin.input import CheckedModelAdmin
from monitoring.notifications.forms import SubscriptionForm
from monitoring.notifications.models import NotificationDelivery, NotificationSubscription
from monitoring.notifications.subscriptions import (
    deliveries_visible_to,
    subscription_save,
    subscriptions_managed_by,
    tenant_ids_managing_notifications,
)


def _manages_any(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and user.is_staff and tenant_ids_managing_notifications(user))


class TenantScopedAdmin(CheckedModelAdmin):
    def has_module_permission(self, request: HttpRequest) -> bool:
        return _manages_any(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _manages_any(request)


@admin.register(NotificationSubscription)
class NotificationSubscriptionAdmin(TenantScopedAdmin):
    form = SubscriptionForm
    list_display = ["name", "tenant", "channel", "destination", "kinds", "environment", "is_active"]
    list_filter = ["channel", "is_active", "environment"]
    search_fields = ["name", "destination"]
    fields = ["tenant", "name", "kinds", "channel", "destination", "environment", "is_active", "secret"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[NotificationSubscription]:
        return subscriptions_managed_by(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return _manages_any(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _manages_any(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _manages_any(request)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form_class = super().get_form(request, obj, change, **kwargs)
        tenant_ids = tenant_ids_managing_notifications(request.user)

        class ScopedForm(form_class):  # type: ignore[misc, valid-type]
            def __init__(self, *args: Any, **inner: Any) -> None:
                super().__init__(*args, tenant_ids=tenant_ids, **inner)

        return ScopedForm

    def save_model(
        self, request: HttpRequest, obj: NotificationSubscription, form: Any, change: bool
    ) -> None:
        _, secret = subscription_save(
            subscription=obj, actor=request.user, secret=form.cleaned_data.get("secret", "")
        )
        if secret and not form.cleaned_data.get("secret"):
            self.message_user(
                request,
                f"Signing secret of {obj.name!r} (shown once, copy it now): {secret}",
                messages.WARNING,
            )


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = [
        "id",
        "created_at",
        "tenant",
        "kind",
        "channel",
        "subscription",
        "status",
        "attempts",
        "response_code",
    ]
    list_filter = ["status", "kind", "channel"]
    search_fields = ["=execution_id", "destination"]
    list_select_related = ["tenant", "subscription"]
    _detail = (
        "subscription",
        "tenant",
        "kind",
        "channel",
        "destination",
        "event_id",
        "execution_id",
        "status",
        "attempts",
        "max_attempts",
        "response_code",
        "last_error",
        "next_attempt_at",
        "last_attempt_at",
        "delivered_at",
        "attempt_log",
        "subject",
        "body",
    )
    fields = _detail
    readonly_fields = _detail

    def get_queryset(self, request: HttpRequest) -> QuerySet[NotificationDelivery]:
        return deliveries_visible_to(request.user)
