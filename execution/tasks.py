"""django-q2 task adapters: each looks things up and calls one service."""

from __future__ import annotations

from django.conf import settings

WAKE_TASK = "execution.tasks.drain_queue"


def drain_queue() -> int:
    from execution.engine.worker import drain

    return drain()


def reap() -> dict[str, int]:
    from execution.services.reaper import reap_expired

    return reap_expired()


def wake_workers() -> bool:
    """Queue a drain task unless enough are already waiting in the broker (coalesced)."""
    from django_q.models import OrmQ
    from django_q.tasks import async_task

    cluster = settings.Q_CLUSTER["name"]
    waiting = OrmQ.objects.filter(key=cluster).count()
    if waiting >= int(str(settings.Q_CLUSTER["workers"])):
        return False
    async_task(WAKE_TASK, save=False)
    return True
