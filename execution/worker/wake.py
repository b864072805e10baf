"""Wake-ups of the worker clusters, without anyone importing the runtime.

Services call :func:`request_wake` when they made work runnable (an enqueue, a requeue, a
retry handed back, a reaped lease). The wakers registered with :func:`register_waker` act
on it; the default one, installed by the app config in every process, is one
``NOTIFY ops_queue_wake`` in the caller's transaction (PostgreSQL delivers it at commit, so
a cluster never wakes for a row it cannot see yet). Each cluster's main process LISTENs on
that channel (execution/worker/runtime.py) and hands drain tasks to its idle workers; a
lost notification only delays a start until the cluster's next poll (about a second).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import connection

logger = logging.getLogger(__name__)

WAKE_CHANNEL = "ops_queue_wake"

_wakers: list[Callable[[], None]] = []


def register_waker(func: Callable[[], None]) -> None:
    if func not in _wakers:
        _wakers.append(func)


def request_wake() -> None:
    """Ask the clusters to drain the queue (inside the caller's transaction, if any)."""
    for waker in list(_wakers):
        try:
            waker()
        except Exception:  # a wake-up is an optimisation: the cluster polls anyway
            logger.exception("wake-up failed")


def notify_clusters() -> None:
    """The default waker: one transactional NOTIFY on the clusters' channel."""
    with connection.cursor() as cursor:
        cursor.execute(f"NOTIFY {WAKE_CHANNEL}")
