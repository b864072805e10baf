"""Immediate mode (docs/contract.md#vocabulary): the request waits while a worker runs the execution.

No step ever runs in a web process. An immediate execution is queued at priority 1 like any
other; the request polls its row until it ends or the fast SLA bound
(``IMMEDIATE_WAIT_SECONDS``, 10 s) passes, then answers 201 with the result, or 202 while
it goes on in the background.

A waiting request holds one of the web process's ``WEB_THREADS`` threads
(opsconductor/asgi_pool.py). So that no burst of immediate submissions (one member's loop
is enough) takes every thread and leaves /healthz, the pages and other tenants without an
answer, at most ``IMMEDIATE_WAITERS`` requests of a process wait at once; the next one is
answered 202 at once, its execution queued at the same priority.
"""

from __future__ import annotations

import threading
import time

from django.conf import settings

from execution.enums import FINISHED_STATUSES
from execution.models import Execution

# Poll fast at first (a noop plan ends within a few hundred ms), then back off.
FIRST_POLL_SECONDS = 0.05
MAX_POLL_SECONDS = 0.5

_lock = threading.Lock()
_waiting = 0


def _wait_begin() -> bool:
    """Take a waiter's place; False when ``IMMEDIATE_WAITERS`` requests wait already."""
    global _waiting
    with _lock:
        if _waiting >= settings.IMMEDIATE_WAITERS:
            return False
        _waiting += 1
        return True


def _wait_end() -> None:
    global _waiting
    with _lock:
        _waiting -= 1


def execution_await(*, execution: Execution) -> Execution:
    """Wait until ``execution`` ends or ``IMMEDIATE_WAIT_SECONDS`` pass; return the fresh row
    (``execution`` itself, still queued, when the process's waiters are all taken).

    The caller must not hold a transaction open: the worker's commits are read as they land.
    """
    if not _wait_begin():
        return execution
    try:
        deadline = time.monotonic() + settings.IMMEDIATE_WAIT_SECONDS
        delay = FIRST_POLL_SECONDS
        while True:
            status = Execution.objects.values_list("status", flat=True).get(pk=execution.pk)
            if status in FINISHED_STATUSES or time.monotonic() >= deadline:
                break
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, MAX_POLL_SECONDS)
        return Execution.objects.get(pk=execution.pk)
    finally:
        _wait_end()
