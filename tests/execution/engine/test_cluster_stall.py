"""A cluster whose idle worker process was SIGKILLed keeps taking work (real ``qcluster``).

django-q2's worker processes share one ``multiprocessing.Queue``; an idle worker waits for a
task inside ``Queue.get()`` holding the queue's reader lock. SIGKILLed there, it leaves the
lock held for ever: the sentinel replaces the process, but the new one and every other
worker then wait for that lock, and the cluster takes nothing more while looking alive."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from django.test import Client

from execution.models import Execution, WorkerHeartbeat
from tests.execution.engine.helpers import child_pids, enqueue, make_execution, wait_until, worker_cluster
from tests.monitoring.test_metrics import scrape, value

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

READ = "0"  # read(2) on x86_64: the first field of /proc/<pid>/syscall while blocked in it


def _blocked_in_read(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/syscall").read_text().split()[0] == READ
    except (OSError, IndexError):
        return False


def _reader_lock_holder(sentinel: int, workers: int) -> int | None:
    """The idle worker that holds the task queue's reader lock: the one blocked reading the
    queue's pipe (the others wait for the lock, in futex). The sentinel spawns its workers
    first, then the monitor (which reads its own queue) and the pusher: the lowest pids."""
    pool = sorted(child_pids(sentinel))[:workers]
    reading = [p for p in pool if _blocked_in_read(p)]
    return reading[0] if len(reading) == 1 else None


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="reads x86_64 syscall numbers from /proc")
def test_a_cluster_whose_idle_worker_was_sigkilled_still_runs_the_next_execution(
    client: Client, tenant, operator
) -> None:
    client.force_login(operator)
    with worker_cluster(workers=2) as cluster:
        wait_until(lambda: bool(child_pids(cluster.pid)), 60, what="the sentinel")
        sentinel = child_pids(cluster.pid)[0]
        holder: list[int] = []

        def found() -> bool:
            pid = _reader_lock_holder(sentinel, 2)
            holder[:] = [pid] if pid else []
            return bool(holder)

        wait_until(found, 60, what="an idle worker waiting on the task queue")
        os.kill(holder[0], signal.SIGKILL)
        time.sleep(1.0)  # the sentinel notices the death and spawns a new worker

        execution = make_execution(tenant=tenant, actor=operator, steps=[{"type": "noop"}])
        enqueue(execution)
        wait_until(
            lambda: Execution.objects.get(pk=execution.pk).status == "completed",
            45,
            what="the execution to complete after the kill",
        )
        cluster_row = WorkerHeartbeat.objects.get(worker_id__startswith="cluster:", pid=cluster.pid)
        assert cluster_row.stall_recoveries == 1 and cluster_row.last_stall_recovery_at is not None
        assert value(scrape(client), "opsconductor_cluster_stall_recoveries") == 1
        page = client.get("/monitoring/").content.decode()
        assert '<td class="stall-recoveries">1 (last ' in page

        # The cluster goes on taking work on its new queue.
        more = [make_execution(tenant=tenant, actor=operator, steps=[{"type": "noop"}]) for _ in range(3)]
        for execution in more:
            enqueue(execution)
        wait_until(
            lambda: Execution.objects.filter(pk__in=[e.pk for e in more], status="completed").count() == 3,
            45,
            what="three more executions",
        )
