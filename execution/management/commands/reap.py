"""``manage.py reap``: return expired leases to the queue and free expired locks now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from execution.services.reaper import reap_expired


class Command(BaseCommand):
    help = "Return queue items with expired leases to the queue (or the DLQ) and free expired locks."

    def handle(self, *args: Any, **options: Any) -> None:
        counts = reap_expired()
        self.stdout.write(
            f"returned {counts['returned']}, dead-lettered {counts['dead_lettered']}, "
            f"locks freed {counts['locks_freed']}"
        )
