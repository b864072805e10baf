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


def audit_seal_and_ship() -> str:
    """Seal the audit rows and events committed since the last run, then feed the sinks."""
    from execution.services.audit_chain import audit_seal
    from execution.services.audit_sink import audit_ship

    sealed = audit_seal()
    return f"sealed {sealed.sealed}; shipped {audit_ship()}"


def wake_workers(wanted: int = 1) -> int:
    """Queue up to ``wanted`` drain tasks (never more than the cluster's worker count), minus
    those waiting in the broker not yet picked up. Returns how many were queued. Called by
    the cluster's main loop only (execution/worker/runtime.py).

    "Waiting" is django-q2's own ``queue_size()``: rows not yet pulled by the cluster (a
    pulled row's ``lock`` is pushed into the future), so a killed worker's row does not
    block wake-ups. A running drain takes new items itself; these tasks only bring idle
    workers in.
    """
    from django_q.brokers import get_broker
    from django_q.tasks import async_task

    workers = int(str(settings.Q_CLUSTER["workers"]))
    waiting = get_broker().queue_size()
    count = max(0, min(wanted, workers) - waiting)
    for _ in range(count):
        async_task(WAKE_TASK, save=False)
    return count
