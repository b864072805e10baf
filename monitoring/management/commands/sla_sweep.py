"""``manage.py sla_sweep``: detect SLA violations now (the clusters' schedule runs the same
every minute); ``--watch``: again every ``SLA_SWEEP_INTERVAL_SECONDS`` until SIGTERM/Ctrl-C.

``serve`` runs the watch as a process of its own, beside the web server and the workers: an
SLA sweep that only a worker cluster runs never sees a queue that no worker takes (the
workers stopped or all lost), which is when its ``queue_wait`` alert matters most.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from monitoring.services.sla import sla_violations_detect


class Command(BaseCommand):
    help = "Raise one alert and one sla_violation event per new SLA violation; print them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--watch",
            action="store_true",
            help="sweep again every SLA_SWEEP_INTERVAL_SECONDS until SIGTERM or Ctrl-C",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["watch"]:
            self.sweep_once()
            return
        stop = threading.Event()
        # Signal handlers only set a flag; the loop does the work.
        signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
        signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
        self.stdout.write(f"sla watch: sweeping every {settings.SLA_SWEEP_INTERVAL_SECONDS:g} s")
        while not stop.is_set():
            close_old_connections()  # a long loop: never keep a connection the server dropped
            try:
                self.sweep_once(quiet=True)
            except Exception as exc:  # the database away for a while: the next round retries
                self.stderr.write(f"sla watch: sweep failed: {type(exc).__name__}: {exc}")
            stop.wait(settings.SLA_SWEEP_INTERVAL_SECONDS)

    def sweep_once(self, *, quiet: bool = False) -> None:
        result = sla_violations_detect()
        for alert in result.alerts:
            self.stdout.write(f"{alert.kind:<18} {alert.execution_id} {alert.sla_class:<6} {alert.message}")
        if quiet and not result.alerts:
            return
        self.stdout.write(
            f"{len(result.alerts)} new alert(s); {result.checked_executions} overdue execution(s) and "
            f"{result.checked_queue_items} late queue item(s) not alerted before"
        )
