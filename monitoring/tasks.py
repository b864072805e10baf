"""django-q2 task adapters (scheduled in opsconductor/schedules.py)."""

from __future__ import annotations

from monitoring.services.rollups import rollups_fold
from monitoring.services.sla import sla_violations_detect


def sla_sweep() -> int:
    """The SLA sweeper: returns how many new violations it alerted on."""
    return len(sla_violations_detect().alerts)


def fold_rollups() -> int:
    """Move the recorded deltas into the rollups (and trim old ones): returns how many moved."""
    return rollups_fold().folded
