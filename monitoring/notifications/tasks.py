"""django-q2 task adapters for notifications, and the cluster's wake-up for due retries."""

from __future__ import annotations

import time

from django.utils import timezone

from monitoring.notifications.deliver import deliveries_send_due
from monitoring.notifications.dispatch import notifications_dispatch
from monitoring.notifications.models import NotificationDelivery

DELIVER_TASK = "monitoring.notifications.tasks.deliver_due"
WAKE_EVERY_SECONDS = 1.0
_last_wake = -WAKE_EVERY_SECONDS


def notify_event(event_id: int) -> int:
    """Record the deliveries of one event and send what is due; returns attempts made."""
    notifications_dispatch(event_id=event_id)
    return deliveries_send_due()


def deliver_due() -> int:
    return deliveries_send_due()


def deliveries_wake() -> bool:
    """Called by each cluster's tick: queue a ``deliver_due`` task when a retry is due.

    At most once a second per cluster; a claimed delivery is not due (its lease pushed
    ``next_attempt_at`` forward), so retries in flight queue nothing more.
    """
    global _last_wake
    now = time.monotonic()
    if now - _last_wake < WAKE_EVERY_SECONDS:
        return False
    _last_wake = now
    due = NotificationDelivery.objects.filter(
        status__in=[NotificationDelivery.Status.PENDING, NotificationDelivery.Status.RETRYING],
        next_attempt_at__lte=timezone.now(),
    ).exists()
    if due:
        from django_q.tasks import async_task

        async_task(DELIVER_TASK, save=False)
    return due
