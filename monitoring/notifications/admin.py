"""Subscriptions and deliveries in the admin: the tenant's configuration (the policy's
CONFIGURE), scoped to the tenants the user administers like every tenant-scoped admin.
A superuser's opening of a delivery (its body) is on the tenant's audit trail."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest

from execution import policy
from execution.admin.scoped import TenantScopedAdmin
from monitoring.notifications.forms import SubscriptionForm
from monitoring.notifications.models import NotificationDelivery, NotificationSubscription
from monitoring.notifications.subscriptions import subscription_save, subscription_undeliverable


@admin.register(NotificationSubscription)
class NotificationSubscriptionAdmin(TenantScopedAdmin):
    view_right = edit_right = policy.Right.CONFIGURE
    form = SubscriptionForm
    list_display = ["name", "tenant", "channel", "destination", "kinds", "environment", "is_active"]
    list_filter = ["channel", "is_active", "environment"]
    search_fields = ["name", "destination"]
    fields = ["tenant", "name", "kinds", "channel", "destination", "environment", "is_active", "secret"]
    list_select_related = ["tenant"]

    def save_model(
        self, request: HttpRequest, obj: NotificationSubscription, form: Any, change: bool
    ) -> None:
        self.require_save(request, obj, change)
        _, secret = subscription_save(
            subscription=obj, actor=request.user, secret=form.cleaned_data.get("secret", "")
        )
        if secret and not form.cleaned_data.get("secret"):
            self.message_user(
                request,
                f"Signing secret of {obj.name!r} (shown once, copy it now): {secret}",
                messages.WARNING,
            )
        undeliverable = subscription_undeliverable(obj)
        if undeliverable:
            self.message_user(request, undeliverable, messages.WARNING)


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(TenantScopedAdmin):
    view_right = policy.Right.CONFIGURE
    read_audit_event = "admin_read_delivery"
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
