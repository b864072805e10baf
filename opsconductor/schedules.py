"""The periodic jobs run by the django-q2 clusters, kept as django_q Schedule rows.

``schedules_ensure()`` upserts them; it runs after every ``migrate`` (post_migrate, see
execution/apps.py) and on ``manage.py serve``. Each area adds its own line to SCHEDULES.
"""

from __future__ import annotations

from typing import NamedTuple


class PeriodicJob(NamedTuple):
    name: str
    func: str  # dotted path of a django-q2 task (an adapter that calls one service)
    minutes: int


SCHEDULES: list[PeriodicJob] = [
    # Also run every REAPER_INTERVAL_SECONDS by each cluster process (execution qcluster).
    PeriodicJob("execution: reap expired leases and locks", "execution.tasks.reap", 1),
    PeriodicJob("approvals: expire overdue approvals", "approvals.tasks.expire_approvals", 1),
    PeriodicJob(
        "approvals: forget spent approval links past their age", "approvals.tasks.forget_spent_links", 60
    ),
    PeriodicJob("monitoring: detect SLA violations", "monitoring.tasks.sla_sweep", 1),
    PeriodicJob("monitoring: fold rollups", "monitoring.tasks.fold_rollups", 1),
    PeriodicJob("execution: seal the audit chain and ship it", "execution.tasks.audit_seal_and_ship", 1),
    PeriodicJob(
        "execution: prune finished executions older than RETENTION_DAYS", "execution.tasks.prune", 24 * 60
    ),
]


def schedules_ensure() -> int:
    """Create or update one django_q Schedule per entry of SCHEDULES; return how many."""
    from django_q.models import Schedule

    for job in SCHEDULES:
        Schedule.objects.update_or_create(
            name=job.name,
            defaults={
                "func": job.func,
                "schedule_type": Schedule.MINUTES,
                "minutes": job.minutes,
                "repeats": -1,
            },
        )
    return len(SCHEDULES)
