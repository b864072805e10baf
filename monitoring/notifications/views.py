"""``/notifications/``: tenant admins manage their tenants' subscriptions and see deliveries."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from execution import policy
from execution.models import Membership, Tenant
from execution.pages.access import page_require
from monitoring.notifications.forms import SubscriptionForm
from monitoring.notifications.models import NotificationSubscription
from monitoring.notifications.subscriptions import (
    deliveries_visible_to,
    subscription_save,
    subscription_undeliverable,
    subscriptions_managed_by,
    tenant_ids_managing_notifications,
)

DELIVERIES_SHOWN = 100


def _managed_tenants(request: HttpRequest) -> set[int]:
    tenant_ids = tenant_ids_managing_notifications(request.user)
    if not tenant_ids:
        # Refused by the policy in the user's (first) tenant, so the refusal is recorded.
        memberships = Membership.objects.filter(user_id=request.user.pk or 0)
        tenant_id = memberships.values_list("tenant_id", flat=True).first()
        if tenant_id is not None:
            page_require(request, policy.Right.CONFIGURE, what="tenant", tenant=tenant_id)
        raise PermissionDenied("only a tenant admin manages notifications")
    return tenant_ids


def _saved(request: HttpRequest, form: SubscriptionForm) -> HttpResponse:
    subscription, secret = subscription_save(
        subscription=form.save(commit=False), actor=request.user, secret=form.cleaned_data.get("secret", "")
    )
    messages.success(request, f"Subscription {subscription.name!r} saved.")
    undeliverable = subscription_undeliverable(subscription)
    if undeliverable:
        messages.warning(request, undeliverable)
    if secret and not form.cleaned_data.get("secret"):
        messages.warning(request, f"Signing secret (shown once, copy it now): {secret}")
    return redirect("notifications:list")


@login_required
def subscription_list(request: HttpRequest) -> HttpResponse:
    tenant_ids = _managed_tenants(request)
    posted = request.POST.get("tenant", "")
    if posted.isdigit() and int(posted) not in tenant_ids and Tenant.objects.filter(pk=int(posted)).exists():
        # Another tenant's (or one where the user is no admin): refused and recorded.
        page_require(request, policy.Right.CONFIGURE, what="tenant", tenant=int(posted))
    form = SubscriptionForm(request.POST or None, tenant_ids=tenant_ids)
    if request.method == "POST":
        if form.is_valid():
            return _saved(request, form)
        status = 400
    else:
        status = 200
    context = {
        "subscriptions": subscriptions_managed_by(request.user).order_by("tenant__slug", "name"),
        "deliveries": deliveries_visible_to(request.user).order_by("-id")[:DELIVERIES_SHOWN],
        "form": form,
    }
    return render(request, "notifications/subscriptions.html", context, status=status)


def _managed(request: HttpRequest, subscription_id: int) -> NotificationSubscription:
    subscription = subscriptions_managed_by(request.user).filter(pk=subscription_id).first()
    if subscription is None:
        raise Http404("no such subscription")  # another tenant's subscription is simply unknown
    return subscription


@login_required
def subscription_edit(request: HttpRequest, subscription_id: int) -> HttpResponse:
    tenant_ids = _managed_tenants(request)
    subscription = _managed(request, subscription_id)
    form = SubscriptionForm(request.POST or None, instance=subscription, tenant_ids=tenant_ids)
    if request.method == "POST" and form.is_valid():
        return _saved(request, form)
    status = 400 if request.method == "POST" else 200
    context = {"form": form, "subscription": subscription}
    return render(request, "notifications/subscription_edit.html", context, status=status)


@login_required
@require_POST
def subscription_delete(request: HttpRequest, subscription_id: int) -> HttpResponse:
    _managed_tenants(request)
    subscription = _managed(request, subscription_id)
    subscription.delete()
    messages.success(request, f"Subscription {subscription.name!r} deleted.")
    return redirect("notifications:list")
