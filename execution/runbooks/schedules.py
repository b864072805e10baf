"""Schedules (docs/runbooks.md#schedules): a runbook launched by a clock as its owner.

Each cluster calls :func:`schedules_fire_due` every SCHEDULE_TICK_SECONDS. A fire time is
taken by inserting its ``runbook_schedule_fires`` row: unique per (schedule, fire time), so
however many clusters see it due, one insert wins and only that cluster launches. The launch
is ``runbook_launch`` as the owner, whose rights the submit service decides at each fire: a
refusal pauses the schedule and is audited. Fire times older than SCHEDULE_GRACE_SECONDS
when seen (the service was down) were missed: skipped, or the latest of them run once.

Cron expressions are read by croniter in the schedule's time zone (DST included): django-q2's
own schedules keep one next run per row with no tenant, owner or per-fire record, and could
not say "at most one execution per fire time" across clusters by themselves.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from execution import policy
from execution.clients.base import ServiceError
from execution.errors import DomainError
from execution.plans import PlanInvalid, Problem
from execution.runbooks.models import MissedRuns, RunbookSchedule, ScheduleFire
from execution.runbooks.params import params_check
from execution.runbooks.services import runbook_launch, version_of
from execution.services.submit import SubmitDenied

logger = logging.getLogger(__name__)
MAX_ON_TIME = 10  # fire times run in one tick at most (a * * * * * cron with a long grace)


def cron_problems(cron: Any, zone: Any) -> list[Problem]:
    problems = []
    if not isinstance(cron, str) or len(cron.split()) != 5 or not croniter.is_valid(cron):
        problems.append(Problem("cron", "five fields: minute hour day-of-month month day-of-week"))
    try:
        ZoneInfo(str(zone))
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(Problem("timezone", f"{zone!r} is no IANA time zone"))
    return problems


def schedule_problems(schedule: RunbookSchedule) -> list[Problem]:
    """What is wrong with a schedule before it is saved: its cron, zone and fixed values."""
    problems = cron_problems(schedule.cron, schedule.timezone)
    if schedule.runbook_id is not None:
        if schedule.runbook.tenant_id != schedule.tenant_id:
            problems.append(Problem("runbook", "belongs to another tenant"))
        else:
            try:
                version = version_of(schedule.runbook, schedule.version)
                params_check(version.parameters, schedule.params, tenant=schedule.runbook.tenant)
            except PlanInvalid as invalid:
                problems.extend(invalid.problems)
            except DomainError as error:
                problems.append(Problem("version", str(error)))
    return problems


def _times(schedule: RunbookSchedule, after: datetime, until: datetime, limit: int) -> list[datetime]:
    zone = ZoneInfo(schedule.timezone)
    found: list[datetime] = []
    it = croniter(schedule.cron, after.astimezone(zone))
    while len(found) < limit:
        nxt = it.get_next(datetime)
        if nxt > until:
            break
        found.append(nxt.astimezone(ZoneInfo("UTC")))
    return found


def next_fire_times(
    schedule: RunbookSchedule, *, count: int = 5, now: datetime | None = None
) -> list[datetime]:
    """The next ``count`` fire times after ``now`` (UTC)."""
    now = now or timezone.now()
    return _times(schedule, now, now + timedelta(days=3660), count)


def _latest_before(schedule: RunbookSchedule, moment: datetime) -> datetime:
    zone = ZoneInfo(schedule.timezone)
    prev: datetime = croniter(schedule.cron, moment.astimezone(zone)).get_prev(datetime)
    return prev.astimezone(ZoneInfo("UTC"))


def _take(schedule: RunbookSchedule, fire_time: datetime, outcome: str) -> ScheduleFire | None:
    """The fire time's row, if this caller's insert won it (None: another cluster has it)."""
    try:
        with transaction.atomic():
            return ScheduleFire.objects.create(schedule=schedule, fire_time=fire_time, outcome=outcome)
    except IntegrityError:
        return None


def _pause(schedule: RunbookSchedule, reason: str) -> None:
    # Only an active schedule is paused (and audited) once, whichever cluster saw it first.
    paused = RunbookSchedule.objects.filter(pk=schedule.pk, active=True).update(
        active=False, paused_reason=reason, updated_at=timezone.now()
    )
    if paused:
        policy.rbac_audit(
            tenant=schedule.tenant_id,
            actor=schedule.owner,
            event_type="schedule_paused",
            reason=reason,
            details={"schedule": schedule.pk, "name": schedule.name, "runbook": schedule.runbook.slug},
        )


def _fire(schedule: RunbookSchedule, fire: ScheduleFire) -> None:
    try:
        outcome = runbook_launch(
            runbook=schedule.runbook,
            actor=schedule.owner,
            params=schedule.params,
            version=schedule.version,
            # A second guard beside the fire row: the same fire time is the same execution.
            idempotency_header=f"schedule:{schedule.pk}:{fire.fire_time.isoformat()}",
            wait=False,
        )
    except SubmitDenied as denied:
        fire.outcome, fire.detail = "refused", denied.reason
        _pause(schedule, f"the owner {schedule.owner.get_username()!r} may not launch it: {denied.reason}")
    except PlanInvalid as invalid:
        fire.outcome, fire.detail = "invalid", str(invalid)
    except (DomainError, ServiceError) as error:
        fire.outcome, fire.detail = "failed", str(error)
    else:
        fire.outcome, fire.execution_id = "launched", outcome.execution.execution_id
    fire.save(update_fields=["outcome", "detail", "execution_id"])


def schedule_tick(schedule: RunbookSchedule, *, now: datetime) -> int:
    """Handle ``schedule``'s due fire times at ``now``; returns how many this caller launched."""
    grace = timedelta(seconds=settings.SCHEDULE_GRACE_SECONDS)
    cursor = schedule.last_fire_at or schedule.created_at
    on_time = _times(schedule, max(cursor, now - grace), now, MAX_ON_TIME)
    latest_missed = _latest_before(schedule, now - grace)
    missed = latest_missed if latest_missed > cursor and latest_missed not in on_time else None
    launched = 0
    if missed is not None:
        if schedule.missed == MissedRuns.RUN_ONCE and not on_time:
            on_time = [missed]
        else:
            fire = _take(schedule, missed, "skipped")
            if fire is not None:
                fire.detail = "missed while the service was down (this and any earlier missed fire times)"
                fire.save(update_fields=["detail"])
    for fire_time in on_time:
        fire = _take(schedule, fire_time, "launching")
        if fire is None:
            continue  # another cluster took this fire time
        _fire(schedule, fire)
        launched += fire.outcome == "launched"
        if fire.outcome == "refused":
            break
    handled = max([*on_time, *([missed] if missed else [])], default=None)
    if handled is not None:
        # Forward only: a slower cluster never moves the cursor back.
        RunbookSchedule.objects.filter(pk=schedule.pk).exclude(last_fire_at__gte=handled).update(
            last_fire_at=handled
        )
    return launched


def schedules_fire_due(*, now: datetime | None = None) -> int:
    """Every active schedule's due fire times (each cluster, every SCHEDULE_TICK_SECONDS)."""
    now = now or timezone.now()
    launched = 0
    schedules = RunbookSchedule.objects.filter(active=True).select_related(
        "runbook__tenant", "owner", "tenant"
    )
    for schedule in schedules:
        try:
            launched += schedule_tick(schedule, now=now)
        except Exception:
            # One broken schedule (a zone removed from tzdata) must not stop the others.
            logger.exception("schedule %s failed to tick", schedule.pk)
    return launched
