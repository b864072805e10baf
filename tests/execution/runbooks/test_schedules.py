"""Schedules (docs/runbooks.md#schedules): one execution per fire time however many callers
see it due, missed runs skipped or run once, the owner's rights asked at each fire (a lost
right pauses the schedule, audited), the next five fire times in the schedule's zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from execution.models import AuditLog, Execution, Membership
from execution.runbooks.models import Runbook, RunbookSchedule, ScheduleFire
from execution.runbooks.schedules import next_fire_times, schedule_tick, schedules_fire_due

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 3, 10, 0, 0, tzinfo=UTC)


def _schedule(health: Runbook, owner: Any, **fields: Any) -> RunbookSchedule:
    schedule = RunbookSchedule.objects.create(
        tenant=health.tenant,
        runbook=health,
        name="every minute",
        cron="* * * * *",
        params={"host": "web-1"},
        owner=owner,
        **fields,
    )
    RunbookSchedule.objects.filter(pk=schedule.pk).update(created_at=T0)
    schedule.refresh_from_db()
    return schedule


def test_callers_that_see_the_same_fire_time_start_one_execution(operator: Any, health: Runbook) -> None:
    schedule = _schedule(health, operator)
    # Two clusters that read the schedule before either fired (the same cursor).
    first, second = RunbookSchedule.objects.get(pk=schedule.pk), RunbookSchedule.objects.get(pk=schedule.pk)
    now = T0 + timedelta(minutes=1, seconds=5)
    assert schedule_tick(first, now=now) == 1
    assert schedule_tick(second, now=now) == 0
    assert schedules_fire_due(now=now) == 0
    fire = ScheduleFire.objects.get()
    assert fire.fire_time == T0 + timedelta(minutes=1) and fire.outcome == "launched"
    execution = Execution.objects.get()
    assert fire.execution_id == execution.execution_id and execution.actor == operator
    assert execution.runbook == {
        "slug": "health",
        "version": 1,
        "params": execution.runbook["params"],
        "author_id": execution.runbook["author_id"],
    }
    assert schedules_fire_due(now=now + timedelta(minutes=1)) == 1  # the next minute
    assert Execution.objects.count() == 2


def test_runs_missed_while_down_are_skipped_when_on_time_ones_run(
    operator: Any, health: Runbook, settings: Any
) -> None:
    settings.SCHEDULE_GRACE_SECONDS = 120
    schedule = _schedule(health, operator, missed="run_once")
    # Down for an hour: the fire times of the last two minutes run, the earlier ones are skipped.
    schedule_tick(schedule, now=T0 + timedelta(hours=1, minutes=2, seconds=30))
    on_time = {T0 + timedelta(hours=1, minutes=1), T0 + timedelta(hours=1, minutes=2)}
    fires = {f.fire_time: f.outcome for f in ScheduleFire.objects.all()}
    assert {t: o for t, o in fires.items() if t in on_time} == dict.fromkeys(on_time, "launched")
    assert [o for t, o in fires.items() if t not in on_time] == ["skipped"]  # one row says so
    assert Execution.objects.count() == 2


@pytest.mark.parametrize(("missed", "runs"), [("skip", 0), ("run_once", 1)])
def test_runs_missed_while_down_are_skipped_or_run_once(
    operator: Any, health: Runbook, settings: Any, missed: str, runs: int
) -> None:
    settings.SCHEDULE_GRACE_SECONDS = 120
    schedule = _schedule(health, operator, missed=missed)
    schedule.cron = "0 * * * *"
    schedule.save()
    # Down until 05:30: five hourly fire times missed, none inside the grace.
    schedule_tick(schedule, now=T0 + timedelta(hours=5, minutes=30))
    assert Execution.objects.count() == runs
    outcome = ScheduleFire.objects.get()
    assert outcome.fire_time == T0 + timedelta(hours=5)
    assert outcome.outcome == ("launched" if runs else "skipped")
    schedule.refresh_from_db()
    assert schedule.last_fire_at == T0 + timedelta(hours=5)
    schedule_tick(schedule, now=T0 + timedelta(hours=5, minutes=31))
    assert ScheduleFire.objects.count() == 1  # handled once


def test_a_deactivated_owner_pauses_the_schedule(operator: Any, health: Runbook) -> None:
    schedule = _schedule(health, operator)
    operator.is_active = False
    operator.save()
    assert schedules_fire_due(now=T0 + timedelta(minutes=1, seconds=1)) == 0
    schedule.refresh_from_db()
    assert not schedule.active and "olga-operator" in schedule.paused_reason
    assert not Execution.objects.exists()
    assert ScheduleFire.objects.get().outcome == "refused"
    audit = AuditLog.objects.get(event_type="schedule_paused")
    assert audit.tenant == health.tenant and audit.actor == operator
    assert schedules_fire_due(now=T0 + timedelta(minutes=2, seconds=1)) == 0  # paused: not asked again
    assert AuditLog.objects.filter(event_type="schedule_paused").count() == 1


def test_an_owner_demoted_to_viewer_pauses_the_schedule(operator: Any, health: Runbook) -> None:
    schedule = _schedule(health, operator)
    Membership.objects.filter(user=operator).update(role="viewer")
    schedules_fire_due(now=T0 + timedelta(minutes=1, seconds=1))
    schedule.refresh_from_db()
    assert not schedule.active and "viewer" in schedule.paused_reason
    assert not Execution.objects.exists()


def test_the_next_five_fire_times_follow_the_zone(operator: Any, health: Runbook) -> None:
    schedule = _schedule(health, operator)
    schedule.cron, schedule.timezone = "30 9 * * 1-5", "Europe/Berlin"
    times = next_fire_times(schedule, now=datetime(2027, 3, 24, 12, 0, tzinfo=UTC))  # a Wednesday
    # 09:30 in Berlin: 08:30 UTC in winter, 07:30 UTC once summer time began (Sunday 28 March)
    assert [t.strftime("%a %d %H:%M") for t in times] == [
        "Thu 25 08:30",
        "Fri 26 08:30",
        "Mon 29 07:30",
        "Tue 30 07:30",
        "Wed 31 07:30",
    ]


def test_a_bad_cron_zone_or_value_is_refused(operator: Any, health: Runbook) -> None:
    schedule = RunbookSchedule(
        tenant=health.tenant,
        runbook=health,
        name="bad",
        cron="61 * * *",
        timezone="Mars/Olympus",
        params={"host": "db-1"},
        owner=operator,
    )
    with pytest.raises(ValidationError) as refused:
        schedule.full_clean()
    assert set(refused.value.message_dict) == {"cron", "timezone", "params"}
    assert "params.host" in refused.value.message_dict["params"][0]


def test_the_runbook_page_shows_the_next_five_fire_times(operator: Any, health: Runbook, client: Any) -> None:
    _schedule(health, operator)
    client.force_login(operator)
    page = client.get("/runbooks/acme/health/")
    shown = page.context["schedules"][0]["next"]
    assert len(shown) == 5 and all(b - a == timedelta(minutes=1) for a, b in pairwise(shown))
    assert 'class="next-fires"' in page.content.decode()
