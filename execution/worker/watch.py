"""The watcher of a worker process: cancel and timeout detection, lease heartbeats.

One daemon thread per process (with its own database connection, kept open) watches the
attempt the process runs now: it polls the execution row for a cancel request several
times a second, compares the clock with ``timeout_at``, and pushes the queue lease and the
asset locks forward every ``LEASE_SECONDS / 3``. It only sets flags; the attempt acts on
them. A short attempt (a noop) is usually over before the watcher looks at it, so it costs
the hot path nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.utils import timezone

from execution.worker import beats, claim

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.25
IDLE_CLOSE_SECONDS = 2.0
HEARTBEAT_SECONDS = 5.0


def worker_id() -> str:
    """This worker process: ``host:pid`` (queue items, locks and heartbeat rows name it)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Shutdown:
    """SIGTERM in this process: the runtime sets it, the watcher ends a long attempt once
    the grace period is over (execution/worker/runtime.py)."""

    requested_at: float | None = None

    def request(self) -> None:
        if self.requested_at is None:
            self.requested_at = time.monotonic()

    def due(self) -> bool:
        return (
            self.requested_at is not None
            and time.monotonic() - self.requested_at >= settings.SHUTDOWN_GRACE_SECONDS
        )


shutdown = Shutdown()


class Watched:
    """The watcher's view of one attempt; ``interrupt`` is set when the step must stop."""

    def __init__(self, *, ctx: claim.AttemptContext, timeout_at: datetime | None, has_locks: bool) -> None:
        self.ctx = ctx
        self.timeout_at = timeout_at
        self.has_locks = has_locks
        self.interrupt = threading.Event()
        self.reason: str | None = None  # "cancelled", "timeout", "lease_lost" or "shutdown"
        self.began = time.monotonic()
        self.next_heartbeat = self.began + max(POLL_SECONDS, settings.LEASE_SECONDS / 3)

    def trip(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self.interrupt.set()

    def check_timeout(self) -> None:
        if self.timeout_at is not None and timezone.now() >= self.timeout_at:
            self.trip("timeout")


class Watcher:
    def __init__(self) -> None:
        self._current: Watched | None = None
        self._thread: threading.Thread | None = None
        # What this process's heartbeat row says it runs, and when it was last written.
        self._reported: Watched | None = None
        self._next_report = 0.0

    def watch(self, watched: Watched) -> Watched:
        self._current = watched
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="attempt-watcher", daemon=True)
            self._thread.start()
        return watched

    def release(self) -> None:
        self._current = None

    def _loop(self) -> None:
        idle_since = time.monotonic()
        while True:
            time.sleep(POLL_SECONDS)
            watched = self._current
            try:
                self._report(watched)
                if watched is not None:
                    idle_since = time.monotonic()
                    self._check(watched)
            except Exception:  # a database blip must not kill the watcher
                logger.exception("watcher")
                connection.close()
            idle_for = time.monotonic() - idle_since
            if watched is None and idle_for > IDLE_CLOSE_SECONDS and connection.connection is not None:
                connection.close()  # idle: give the connection back (a test database must be droppable)

    def _report(self, watched: Watched | None) -> None:
        """The process's heartbeat row: its current execution (attempts that last longer
        than a poll) and, every few seconds while busy, that it is alive."""
        if watched is self._reported and (watched is None or time.monotonic() < self._next_report):
            return
        beats.worker_heartbeat(worker=worker_id(), current=watched.ctx.execution_id if watched else None)
        self._reported = watched
        self._next_report = time.monotonic() + HEARTBEAT_SECONDS

    def _check(self, watched: Watched) -> None:
        if shutdown.due():
            watched.trip("shutdown")
        watched.check_timeout()
        if beats.cancel_requested(pk=watched.ctx.pk):
            watched.trip("cancelled")
        if time.monotonic() >= watched.next_heartbeat:
            watched.next_heartbeat = time.monotonic() + max(POLL_SECONDS, settings.LEASE_SECONDS / 3)
            if not beats.lease_heartbeat(ctx=watched.ctx, has_locks=watched.has_locks):
                logger.warning("lease lost for execution %s", watched.ctx.execution_id)
                watched.trip("lease_lost")


# The watcher of this process (a thread is started with the first attempt).
watcher = Watcher()
