"""``notifications_dispatch``: one delivery row per matching subscription of an event (one per
approver for an approval request's e-mail)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from execution.models import ExecutionEvent
from monitoring.notifications.kinds import notification_kind
from monitoring.notifications.models import Channel, Kind, NotificationDelivery, NotificationSubscription
from monitoring.notifications.recipients import approval_voters
from monitoring.notifications.render import Content, content_email, content_webhook

logger = logging.getLogger(__name__)


def subscriptions_matching(
    *, tenant_id: int, kind: str, environment: str
) -> QuerySet[NotificationSubscription]:
    """Active subscriptions of the tenant to ``kind``, for every environment or this one."""
    return NotificationSubscription.objects.filter(
        Q(environment="") | Q(environment=environment),
        tenant_id=tenant_id,
        is_active=True,
        kinds__contains=[kind],
    ).order_by("id")


def notifications_dispatch(*, event_id: int) -> list[NotificationDelivery]:
    """Record (masked, ready to send) the deliveries of one committed event; return the new ones.

    Idempotent: the unique (subscription, event[, recipient]) means a repeated task records
    nothing twice.
    """
    event = (
        ExecutionEvent.objects.select_related("execution__tenant", "execution__actor")
        .filter(pk=event_id)
        .first()
    )
    kind = notification_kind(event) if event is not None else None
    if event is None or kind is None:
        return []
    execution = event.execution
    subscriptions = list(
        subscriptions_matching(tenant_id=execution.tenant_id, kind=kind, environment=execution.environment)
    )
    if not subscriptions:
        return []
    voters = approval_voters(execution=execution) if kind == Kind.APPROVAL_REQUESTED else []
    approvers = [user.get_username() for user in voters]
    created: list[NotificationDelivery] = []
    now = timezone.now()
    for subscription in subscriptions:
        # (content, destination, recipient) of each message of this subscription.
        messages: list[tuple[Content, str, int | None]]
        if subscription.channel == Channel.WEBHOOK:
            # A shared channel: one message, one link (docs/notifications.md#approval-links).
            content = content_webhook(event=event, execution=execution, kind=kind, approvers=approvers)
            messages = [(content, subscription.destination, None)]
        elif kind == Kind.APPROVAL_REQUESTED and voters:
            # Exactly the users who may vote, whatever addresses the subscription lists: one
            # message each, with a link only its recipient opens.
            messages = [
                (
                    content_email(
                        event=event, execution=execution, kind=kind, approvers=approvers, recipient=voter
                    ),
                    voter.email,
                    voter.pk,
                )
                for voter in voters
            ]
        else:
            # Nobody may vote (an approval request with no voter to mail): one message without
            # a recipient, recorded as failed when sent ("no recipient").
            content = content_email(event=event, execution=execution, kind=kind, approvers=approvers)
            destination = "" if kind == Kind.APPROVAL_REQUESTED else subscription.destination
            messages = [(content, destination, None)]
        for content, destination, recipient_id in messages:
            try:
                with transaction.atomic():
                    delivery = NotificationDelivery.objects.create(
                        subscription=subscription,
                        tenant_id=execution.tenant_id,
                        event_id=event.pk,
                        execution_id=execution.execution_id,
                        recipient_id=recipient_id,
                        kind=kind,
                        channel=subscription.channel,
                        destination=destination,
                        subject=content.subject,
                        body=content.body,
                        html_body=content.html_body,
                        max_attempts=settings.NOTIFY_MAX_ATTEMPTS,
                        next_attempt_at=now,
                    )
            except IntegrityError:  # recorded by an earlier run of the same task
                continue
            created.append(delivery)
    return created
