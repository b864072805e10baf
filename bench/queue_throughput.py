"""Queue throughput through real worker processes vs django-q2's raw async_task.

    .venv/bin/python bench/queue_throughput.py [--n 500] [--workers 2] [--quick]

Runs N one-step ``noop`` executions through a real ``manage.py qcluster`` (our queue: claim
with SKIP LOCKED, leases, locks, events) and prints executions/s; then, with the same
cluster settings, N no-op ``async_task`` calls straight through django-q2's ORM broker, and
the ratio of the two. Uses DATABASE_URL or the embedded PostgreSQL; the rows it creates are
deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconductor.settings")


def start_cluster(workers: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, OPS_WORKERS=str(workers))
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "qcluster"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop_cluster(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def wait_for_cluster(since: float, timeout: float = 60) -> None:
    from django.utils import timezone

    from execution.models import WorkerHeartbeat

    deadline = time.monotonic() + timeout
    started = timezone.now() - timezone.timedelta(seconds=time.time() - since)
    while time.monotonic() < deadline:
        if WorkerHeartbeat.objects.filter(last_seen_at__gte=started, stopped_at__isnull=True).exists():
            time.sleep(1.0)  # let the workers finish forking
            return
        time.sleep(0.1)
    raise SystemExit("bench: the worker cluster did not start")


def make_executions(n: int) -> list[int]:
    from django.contrib.auth import get_user_model

    from execution.enums import ExecutionStatus
    from execution.models import Execution, ExecutionStep, Tenant

    tenant, _ = Tenant.objects.get_or_create(slug="bench")
    actor, _ = get_user_model().objects.get_or_create(username="bench")
    plan = {"name": "bench noop", "environment": "dev", "steps": [{"name": "noop", "type": "noop"}]}
    executions = Execution.objects.bulk_create(
        Execution(
            tenant=tenant,
            actor=actor,
            plan_snapshot=plan,
            execution_mode="background",
            sla_class="fast",
            action_class="read",
            status=ExecutionStatus.APPROVED,
        )
        for _ in range(n)
    )
    ExecutionStep.objects.bulk_create(
        ExecutionStep(execution=e, step_index=0, step_name="noop", step_type="noop") for e in executions
    )
    return [e.pk for e in executions]


def enqueue_all(pks: list[int]) -> None:
    from django.db import transaction

    from execution.enums import ExecutionStatus
    from execution.models import Execution
    from execution.services.queue import _queue_item_reset
    from execution.services.transition import transition

    with transaction.atomic():
        for execution in Execution.objects.filter(pk__in=pks):
            transition(execution, ExecutionStatus.QUEUED)
            _queue_item_reset(execution=execution)


def ours(n: int, workers: int) -> float:
    from execution.models import Execution
    from execution.tasks import wake_workers

    pks = make_executions(n)
    since = time.time()
    proc = start_cluster(workers)
    try:
        wait_for_cluster(since)
        started = time.monotonic()
        enqueue_all(pks)
        wake_workers(workers)
        while Execution.objects.filter(pk__in=pks).exclude(status="completed").exists():
            time.sleep(0.05)
        elapsed = time.monotonic() - started
    finally:
        stop_cluster(proc)
        Execution.objects.filter(pk__in=pks).delete()
    return n / elapsed


def raw(n: int, workers: int) -> float:
    from django.conf import settings
    from django_q.models import OrmQ
    from django_q.tasks import async_task

    cluster = settings.Q_CLUSTER["name"]
    OrmQ.objects.filter(key=cluster).delete()
    since = time.time()
    proc = start_cluster(workers)
    try:
        wait_for_cluster(since)
        started = time.monotonic()
        for _ in range(n):
            async_task("math.floor", 1.5, save=False)
        while OrmQ.objects.filter(key=cluster).exists():
            time.sleep(0.05)
        elapsed = time.monotonic() - started
    finally:
        stop_cluster(proc)
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="50 executions (for CI)")
    args = parser.parse_args()
    n = 50 if args.quick else args.n

    import django

    django.setup()
    ours_rate = ours(n, args.workers)
    raw_rate = raw(n, args.workers)
    print(f"executions through the queue: {n} on {args.workers} workers: {ours_rate:.1f} executions/s")
    print(f"django-q2 raw async_task no-op: {n} on {args.workers} workers: {raw_rate:.1f} tasks/s")
    print(f"ratio (ours / raw): {ours_rate / raw_rate:.2f}  (goal >= 1.0)")


if __name__ == "__main__":
    main()
