"""Load with faults: executions through two worker clusters while their processes get SIGKILLed.

Only public behaviour is used: executions are submitted through the submission service,
two ``manage.py qcluster`` processes run them, a killer SIGKILLs a process of a cluster (a
leaf of its process tree: a worker or one of its helpers, which the cluster replaces), and
the database is inspected afterwards: every execution ``completed``, its step completed
exactly once and its execution completed exactly once (nothing lost, nothing run twice).

- ``short``: 300 executions, one kill; runs in every suite run (CI).
- ``load``: 20,000 executions, a kill every 10 s; marked ``load``, excluded by default, run
  with ``.venv/bin/python -m pytest -m load`` (about 10-15 minutes on 2 cores).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
from django.db import connection

from execution.enums import FINISHED_STATUSES, ExecutionStatus
from execution.models import Execution, ExecutionEvent
from execution.services.submit import execution_submit
from tests.support.processes import manage_argv, subprocess_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# Short leases and a fast reaper so a killed worker's execution is back in the queue within
# seconds (all public settings of .env.example).
FAST_RECOVERY = {
    "OPS_WORKERS": "2",
    "OPS_LEASE_SECONDS": "10",
    "OPS_REAPER_INTERVAL_SECONDS": "1",
    "OPS_RETRY_BACKOFF_BASE_SECONDS": "0.2",
}


@contextlib.contextmanager
def clusters(count: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    env = subprocess_env(**FAST_RECOVERY)
    procs = [subprocess.Popen(manage_argv("qcluster"), env=env, start_new_session=True) for _ in range(count)]
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # anything of the cluster left behind


def leaves(pid: int) -> list[psutil.Process]:
    """Processes of a cluster's tree that have no children of their own (its workers)."""
    try:
        tree = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [p for p in tree if p.is_running() and not p.children()]


class Killer(threading.Thread):
    """SIGKILLs a random leaf of a random cluster once ``start_when()`` holds, then every
    ``every`` seconds, at most ``limit`` times."""

    def __init__(self, procs: list[subprocess.Popen[bytes]], *, every: float, limit: int, start_when: Any):
        super().__init__(daemon=True)
        self.procs, self.every, self.limit, self.start_when = procs, every, limit, start_when
        self.killed: list[int] = []
        self.stop = threading.Event()
        self.rng = random.Random(14)

    def run(self) -> None:
        try:
            while not self.stop.is_set() and not self.start_when():
                self.stop.wait(0.2)
        finally:
            connection.close()  # start_when() queried the database from this thread
        while not self.stop.is_set() and len(self.killed) < self.limit:
            candidates = leaves(self.rng.choice(self.procs).pid)
            if candidates:
                victim = self.rng.choice(candidates)
                with contextlib.suppress(psutil.NoSuchProcess):
                    victim.send_signal(signal.SIGKILL)
                    self.killed.append(victim.pid)
            self.stop.wait(self.every)


def _finished(tenant: Any) -> int:
    return Execution.objects.filter(tenant=tenant, status__in=FINISHED_STATUSES).count()


@pytest.mark.parametrize(
    ("count", "every", "kills"),
    [
        pytest.param(300, 10.0, 1, id="short"),
        pytest.param(20_000, 10.0, 10_000, id="load", marks=pytest.mark.load),
    ],
)
def test_executions_survive_worker_kills_nothing_lost_nothing_run_twice(
    tenant: Any, operator: Any, count: int, every: float, kills: int
) -> None:
    deadline = time.monotonic() + 120 + count * 0.2
    with clusters(2) as procs:
        killer = Killer(
            procs, every=every, limit=kills, start_when=lambda: _finished(tenant) >= min(50, count)
        )
        killer.start()
        try:
            for n in range(count):
                execution_submit(
                    tenant=tenant,
                    actor=operator,
                    plan={
                        "name": f"load {n}",
                        "environment": "dev",
                        "steps": [{"name": "n", "type": "noop"}],
                    },
                    sla_class="medium",  # background: queued for the clusters
                )
            while _finished(tenant) < count:
                assert time.monotonic() < deadline, f"{_finished(tenant)}/{count} finished in time"
                assert all(p.poll() is None for p in procs), "a cluster died"
                time.sleep(0.5)
        finally:
            killer.stop.set()
            killer.join(30)
        assert all(p.poll() is None for p in procs), "a cluster died"
    assert len(killer.killed) >= 1
    statuses = Counter(Execution.objects.filter(tenant=tenant).values_list("status", flat=True))
    assert statuses == {ExecutionStatus.COMPLETED: count}, statuses
    events = ExecutionEvent.objects.filter(execution__tenant=tenant)
    steps_done = Counter(events.filter(event_type="step_completed").values_list("execution_id", flat=True))
    assert len(steps_done) == count and set(steps_done.values()) == {1}, "each step completed once"
    ended = Counter(events.filter(event_type="completed").values_list("execution_id", flat=True))
    assert len(ended) == count and set(ended.values()) == {1}, "each execution completed once"
