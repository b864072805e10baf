"""Managing subscriptions: who may, and saving one with its (write-only) signing secret."""

from __future__ import annotations

import secrets
from typing import Any

from django.db.models import QuerySet

from execution import policy
from execution.outbound import url_unlisted
from execution.secrets.crypto import encrypt
from monitoring.notifications.models import Channel, NotificationDelivery, NotificationSubscription


def tenant_ids_managing_notifications(user: Any) -> set[int]:
    """Tenants whose subscriptions (and deliveries) ``user`` manages on the pages: where the
    policy grants CONFIGURE through a membership (a superuser too: the admin is where they
    see every tenant's)."""
    return set(policy.tenant_ids_where(user, policy.Right.CONFIGURE))


def subscriptions_managed_by(user: Any) -> QuerySet[NotificationSubscription]:
    return NotificationSubscription.objects.filter(
        tenant_id__in=tenant_ids_managing_notifications(user)
    ).select_related("tenant")


def deliveries_visible_to(user: Any) -> QuerySet[NotificationDelivery]:
    return NotificationDelivery.objects.filter(
        tenant_id__in=tenant_ids_managing_notifications(user)
    ).select_related("subscription", "tenant")


def subscription_save(
    *, subscription: NotificationSubscription, actor: Any, secret: str = ""
) -> tuple[NotificationSubscription, str]:
    """Save ``subscription`` (validated by its form). A webhook without a secret gets a random
    one; the secret is stored encrypted and returned in clear only now, to be shown once.
    Returns the subscription and the new secret ("" when the secret did not change)."""
    new_secret = secret
    if subscription.channel == Channel.WEBHOOK and not secret and not subscription.secret_ciphertext:
        new_secret = secrets.token_urlsafe(32)
    if new_secret:
        subscription.secret_ciphertext = encrypt(new_secret)
    if subscription.pk is None and getattr(actor, "pk", None):
        subscription.created_by = actor
    subscription.save()
    return subscription, new_secret


def subscription_undeliverable(subscription: NotificationSubscription) -> str | None:
    """Why every delivery of a webhook ``subscription`` would be refused by the outbound
    guard (its host is off the tenant's allow-list for the subscription's environment), or
    None. Said when it is saved: the subscription is kept (a rule may be added next), but
    nothing reaches it until then."""
    if subscription.channel != Channel.WEBHOOK:
        return None
    problem = url_unlisted(
        subscription.destination, tenant=subscription.tenant.slug, environment=subscription.environment
    )
    if problem is None:
        return None
    return f"Subscription {subscription.name!r} can never be delivered as it stands: {problem}."
