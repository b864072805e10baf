"""django-q2 task adapters: each calls one function of the worker runtime or a service."""

from __future__ import annotations

from django.conf import settings

WAKE_TASK = "execution.tasks.drain_queue"


def drain_queue() -> int:
    from execution.worker.runtime import drain

    return drain()


def reap() -> dict[str, int]:
    from execution.services.reaper import reap_expired

    return reap_expired()


def prune() -> str:
    """The daily retention run (RETENTION_DAYS; 0 keeps everything)."""
    from execution.services.retention import retention_prune

    if settings.RETENTION_DAYS == 0:
        return "RETENTION_DAYS=0: nothing pruned"
    return retention_prune(
        older_than_days=settings.RETENTION_DAYS, batch_size=settings.RETENTION_BATCH_SIZE
    ).line()


def wake_workers(wanted: int = 1) -> int:
    """Queue up to ``wanted`` drain tasks (never more than the cluster's worker count), minus
    those waiting in the broker not yet picked up. Returns how many were queued. Called by
    the cluster's main loop only (execution/worker/runtime.py).

    Rows a worker has pulled (``lock`` set) are not counted: a killed worker's row stays
    locked for django-q2's ``retry`` period and would otherwise block every wake-up.
    """
    from django_q.models import OrmQ
    from django_q.tasks import async_task

    cluster = settings.Q_CLUSTER["name"]
    workers = int(str(settings.Q_CLUSTER["workers"]))
    in_broker = OrmQ.objects.filter(key=cluster, lock__isnull=True).count()
    count = max(0, min(wanted, workers) - in_broker)
    for _ in range(count):
        async_task(WAKE_TASK, save=False)
    return count
