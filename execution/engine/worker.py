"""The drain loop a worker runs, and the heartbeat of a worker cluster.

A django-q2 task (execution/tasks.py) calls :func:`drain`: it claims and runs queue items
one after the other until the queue has nothing runnable or its time budget is spent, so
one django-q2 round trip serves many executions. The cluster process (our ``qcluster``
command) calls :func:`cluster_tick` about once a second: heartbeat row, reaper, and a
wake-up when runnable items wait with no drain queued (back-off retries, lost wake-ups).
"""

from __future__ import annotations

import logging
import os
import socket
import time

from django.conf import settings
from django.db import close_old_connections
from django.db.models import Q
from django.utils import timezone

from execution.engine.run import run_attempt
from execution.models import QueueItem, WorkerHeartbeat
from execution.services.queue import queue_claim

logger = logging.getLogger(__name__)
FAN_OUT_EVERY_SECONDS = 0.5


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def drain(*, budget_seconds: float | None = None) -> int:
    """Run queue items until none is runnable or the budget is spent; returns how many."""
    budget = (
        budget_seconds if budget_seconds is not None else float(getattr(settings, "DRAIN_BUDGET_SECONDS", 15))
    )
    deadline = time.monotonic() + budget
    me = worker_id()
    ran = 0
    fanned_out_at = -FAN_OUT_EVERY_SECONDS
    while time.monotonic() < deadline:
        claim = queue_claim(worker_id=me)
        if claim is None:
            break
        if time.monotonic() - fanned_out_at >= FAN_OUT_EVERY_SECONDS and runnable_items(limit=1):
            # Fan out: more work is waiting, so let another idle worker start on it now
            # (at most twice a second per drain: two queries per execution otherwise).
            from execution.tasks import wake_workers

            wake_workers()
            fanned_out_at = time.monotonic()
        try:
            run_attempt(execution_pk=claim.execution_pk, claim=claim, worker_id=me)
        except Exception:
            # The lease will expire and the reaper will count this as a failed attempt.
            logger.exception("attempt of queue item %s crashed", claim.item_id)
        ran += 1
        close_old_connections()
    return ran


def runnable_items(limit: int = 100) -> int:
    """How many queue items could be claimed now (counted up to ``limit``)."""
    now = timezone.now()
    runnable = QueueItem.objects.filter(status="pending").filter(
        Q(available_at__lte=now) | Q(available_at__isnull=True)
    )
    return len(runnable.values_list("id", flat=True)[:limit])


def heartbeat_write(*, worker: str, cluster_name: str, started_at: object, stopped: bool = False) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(
        worker_id=worker,
        defaults={
            "cluster_name": cluster_name,
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": started_at,
            "last_seen_at": now,
            "stopped_at": now if stopped else None,
        },
    )
