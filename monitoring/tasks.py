"""django-q2 task adapters (scheduled in opsconductor/schedules.py)."""

from __future__ import annotations

from monitoring.services.sla import sla_violations_detect


def sla_sweep() -> int:
    """The SLA sweeper: returns how many new violations it alerted on."""
    return len(sla_violations_detect().alerts)
