"""A ``* * * * *`` schedule with two real worker clusters for two fire times: each fire time
starts exactly one execution (the unique fire row), and every one of them runs. Two fire
times, each ticked by both clusters every half second, show what a third did (it cost a
minute of the suite: 175 s for the test in a sequential run)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from execution.models import Execution
from execution.runbooks.models import RunbookSchedule, ScheduleFire
from tests.execution.engine.helpers import worker_cluster
from tests.factories import RunbookFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
FIRES = 2


def test_two_clusters_fire_each_minute_once(tenant: Any, operator: Any, tmp_path: Any) -> None:
    runbook = RunbookFactory(tenant=tenant, slug="say", owner=operator)
    schedule = RunbookSchedule.objects.create(
        tenant=tenant, runbook=runbook, name="minutely", cron="* * * * *", owner=operator
    )
    first = schedule.created_at.replace(second=0, microsecond=0) + timedelta(minutes=1)
    last = first + timedelta(minutes=FIRES - 1)
    env = {"OPS_SCHEDULE_TICK_SECONDS": "0.5"}
    with (
        open(tmp_path / "a.log", "wb") as log_a,
        open(tmp_path / "b.log", "wb") as log_b,
        worker_cluster(workers=1, log=log_a, **env),
        worker_cluster(workers=1, log=log_b, **env),
    ):
        deadline = last + timedelta(seconds=60)
        while timezone.now() < deadline:
            done = Execution.objects.filter(status="completed").count()
            if timezone.now() > last + timedelta(seconds=5) and done >= FIRES:
                break
            time.sleep(1)
    fires = list(ScheduleFire.objects.filter(schedule=schedule).order_by("fire_time"))
    expected = [first + timedelta(minutes=i) for i in range(FIRES)]
    assert [f.fire_time for f in fires][:FIRES] == expected, (tmp_path / "a.log").read_text()[-2000:]
    assert all(f.outcome == "launched" for f in fires)
    executions = list(Execution.objects.all())
    # One execution per fire time, never two (however the two clusters' ticks interleaved).
    assert sorted(str(e.execution_id) for e in executions) == sorted(str(f.execution_id) for f in fires)
    assert len(executions) == len(fires) >= FIRES
    assert {e.status for e in executions if e.created_at < last + timedelta(seconds=2)} == {"completed"}
