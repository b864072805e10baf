"""``serve`` sweeps for SLA violations itself, with no worker running: a queue that nobody
takes raises its ``queue_wait`` alert (the sla-drill example in docs/examples/ relies on it).
A real ``manage.py serve --no-workers`` on the test database."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from execution.enums import ExecutionStatus, SlaClass
from monitoring.models import SlaAlert
from tests.execution.engine.helpers import wait_until
from tests.factories import ExecutionFactory, QueueItemFactory
from tests.support.processes import REPO_ROOT, free_port, manage_argv, stop_process, subprocess_env


@pytest.mark.django_db(transaction=True)
def test_serve_without_workers_alerts_on_a_queue_item_waiting_past_its_sla(tmp_path: Path) -> None:
    old = timezone.now() - timedelta(seconds=45)
    late = QueueItemFactory(
        execution=ExecutionFactory(status=ExecutionStatus.QUEUED, sla_class=SlaClass.MEDIUM),
        sla_class=SlaClass.MEDIUM,
        available_at=old,
    )
    late.enqueued_at = old
    late.save()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        serve = subprocess.Popen(
            manage_argv("serve", "--port", str(free_port()), "--no-demo", "--no-workers"),
            cwd=REPO_ROOT,
            env=subprocess_env(SLA_SWEEP_INTERVAL_SECONDS="1"),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(
            lambda: SlaAlert.objects.filter(execution_id=late.execution.execution_id).exists(),
            90,
            interval=0.5,
            what="serve's SLA watch to raise the queue_wait alert",
        )
    finally:
        stop_process(serve)
    alert = SlaAlert.objects.get(execution_id=late.execution.execution_id)
    assert alert.kind == SlaAlert.Kind.QUEUE_WAIT and alert.limit_seconds == 30, log.read_text()[-2000:]
    assert "sla watch: sweeping every 1 s" in log.read_text()
