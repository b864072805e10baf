"""The hook on the one events choke point: a publisher registered with
``execution.services.events``, called after commit for every event.

It only decides (no query for events that notify nobody) and queues one django-q2 task; the
worker that picks it up renders and sends. Nothing is sent from the process that committed.
"""

from __future__ import annotations

from typing import Any

from monitoring.notifications.kinds import notification_kind
from monitoring.notifications.models import NotificationSubscription

DISPATCH_TASK = "monitoring.notifications.tasks.notify_event"


def notification_publish(event: Any) -> None:
    kind = notification_kind(event)
    if kind is None:
        return
    subscribed = NotificationSubscription.objects.filter(
        tenant_id=event.tenant_id, is_active=True, kinds__contains=[kind]
    ).exists()
    if not subscribed:
        return
    from django_q.tasks import async_task

    async_task(DISPATCH_TASK, event.pk, save=False)


def notification_publisher_install() -> None:
    """Register the publisher (called from MonitoringConfig.ready)."""
    from execution.services.events import register_publisher

    register_publisher(notification_publish)
