"""``manage.py sla_sweep``: detect SLA violations now (the schedule runs the same every minute)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from monitoring.services.sla import sla_violations_detect


class Command(BaseCommand):
    help = "Raise one alert and one sla_violation event per new SLA violation; print them."

    def handle(self, *args: Any, **options: Any) -> None:
        result = sla_violations_detect()
        for alert in result.alerts:
            self.stdout.write(f"{alert.kind:<18} {alert.execution_id} {alert.sla_class:<6} {alert.message}")
        self.stdout.write(
            f"{len(result.alerts)} new alert(s); {result.checked_executions} overdue execution(s) and "
            f"{result.checked_queue_items} late queue item(s) not alerted before"
        )
