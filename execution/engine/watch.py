"""The watcher thread of a running attempt: heartbeats, cancel and timeout detection.

It pushes the queue lease and the asset locks forward every few seconds and polls the
execution row for a cancel request several times a second, so a cancel is noticed within
one second even in the middle of a long step. It only sets flags; the run acts on them.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import connection
from django.utils import timezone

from execution.models import Execution
from execution.services.locks import locks_heartbeat
from execution.services.queue import Claim, queue_heartbeat

logger = logging.getLogger(__name__)

CANCEL_POLL_SECONDS = 0.25


class Watch:
    def __init__(self, *, execution: Execution, claim: Claim | None) -> None:
        self.execution = execution
        self.claim = claim
        self.stop_event = threading.Event()
        # Set when the current step must stop; ``reason`` says why.
        self.interrupt = threading.Event()
        self.reason: str | None = None  # "cancelled", "timeout" or "lease_lost"
        self.step_deadline: float | None = None
        self._thread = threading.Thread(
            target=self._loop, name=f"watch-{execution.execution_id}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self._thread.join(10)

    def trip(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self.interrupt.set()

    def check_now(self) -> None:
        """One cancel/timeout check, from the run's own thread (between steps)."""
        self._check_cancel_and_timeout()

    def _check_cancel_and_timeout(self) -> None:
        row = (
            Execution.objects.filter(pk=self.execution.pk).values("cancel_requested_at", "timeout_at").first()
        )
        if row is None:
            return
        if row["cancel_requested_at"] is not None:
            self.trip("cancelled")
        elif row["timeout_at"] is not None and timezone.now() >= row["timeout_at"]:
            self.trip("timeout")

    def _loop(self) -> None:
        heartbeat_every = max(1.0, settings.LEASE_SECONDS / 3)
        next_heartbeat = time.monotonic()  # first heartbeat at once: the claim may be a while ago
        try:
            while not self.stop_event.wait(CANCEL_POLL_SECONDS):
                try:
                    self._check_cancel_and_timeout()
                    if time.monotonic() >= next_heartbeat:
                        next_heartbeat = time.monotonic() + heartbeat_every
                        if self.claim is not None and not queue_heartbeat(claim=self.claim):
                            logger.warning("lease lost for execution %s", self.execution.execution_id)
                            self.trip("lease_lost")
                        locks_heartbeat(execution=self.execution)
                except Exception:  # a database blip must not kill the watcher
                    logger.exception("watcher of %s", self.execution.execution_id)
                    connection.close()
        finally:
            connection.close()  # this thread's own connection
