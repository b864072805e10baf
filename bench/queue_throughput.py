"""Queue throughput and idle start latency through real worker processes, vs django-q2's raw async_task.

    .venv/bin/python bench/queue_throughput.py [--n 500] [--workers 2] [--idle 50] [--quick]
                                               [--step noop|sleep]

1. Throughput: N one-step executions through a real ``manage.py qcluster`` (our queue: claim
   with SKIP LOCKED, leases, locks, RBAC re-check, events) -> executions/s. ``noop`` (the
   default) takes the inline path (2 statements); ``--step sleep`` (0 s) the step-by-step
   path of every runner with effects (3 statements).
2. Idle start latency: with the same cluster idle, one execution at a time is enqueued;
   commit -> ``started_at`` p50/p99 (goal p99 <= 250 ms).
3. Baselines in the same run, same cluster settings: the naive design (one django-q2
   ``async_task`` per execution, each running one execution) -> executions/s and
   the ratio ours / naive; and N no-op ``async_task`` calls (django-q2's broker ceiling),
   with the ratio ours / raw no-op (the engine's acceptance: >= 1.0).

Clocks: ours from the release of the held-back batch, the naive baseline from its first
``async_task``, each to the last execution's ``completed_at`` (PostgreSQL's clock); the raw
no-op leaves no row, so its end is polled (every 50 ms) until the broker is empty.

Uses DATABASE_URL or the embedded PostgreSQL (migrated first); the rows it creates are deleted at the end.
Exits non-zero when an execution does not complete (with its status and error).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
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


# noop: side-effect free, run inline (2 statements per execution); sleep (0 s): the
# step-by-step path every runner with effects takes (claim, start, finish).
STEP_TYPE = "noop"


def make_executions(n: int) -> list[int]:
    from django.contrib.auth import get_user_model

    from execution.enums import ExecutionStatus, Role
    from execution.models import Execution, ExecutionStep, Membership, StoredPolicy, Tenant, TimeoutPolicy
    from execution.plans import plan_hash

    tenant, _ = Tenant.objects.get_or_create(slug="bench", defaults={"name": "bench"})
    actor, _ = get_user_model().objects.get_or_create(username="bench")
    # The worker re-checks the actor's rights before starting (docs/contract.md#rbac): the actor is an
    # operator.
    Membership.objects.get_or_create(tenant=tenant, user=actor, defaults={"role": Role.OPERATOR})
    params = {"seconds": 0} if STEP_TYPE == "sleep" else {}
    step = {"name": STEP_TYPE, "type": STEP_TYPE, "params": params}
    plan = {"name": f"bench {STEP_TYPE}", "environment": "dev", "steps": [step]}
    policy = StoredPolicy.of(TimeoutPolicy.objects.get(sla_class="fast", action_class="read")).as_json()
    executions = Execution.objects.bulk_create(
        Execution(
            tenant=tenant,
            actor=actor,
            plan_snapshot=plan,
            plan_hash=plan_hash(plan),
            timeout_policy=policy,
            execution_mode="background",
            sla_class="fast",
            action_class="read",
            status=ExecutionStatus.APPROVED,
        )
        for _ in range(n)
    )
    ExecutionStep.objects.bulk_create(
        ExecutionStep(execution=e, step_index=0, step_name=STEP_TYPE, step_type=STEP_TYPE) for e in executions
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


def wait_terminal(pks: list[int], deadline_s: float) -> None:
    from django.db.models import Count

    from execution.enums import FINISHED_STATUSES
    from execution.models import Execution

    deadline = time.monotonic() + deadline_s
    while Execution.objects.filter(pk__in=pks).exclude(status__in=FINISHED_STATUSES).exists():
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)  # the poll itself costs the database CPU the workers need
    statuses = dict(
        Execution.objects.filter(pk__in=pks).values_list("status").annotate(n=Count("id")).order_by()
    )
    if statuses != {"completed": len(pks)}:
        bad = Execution.objects.filter(pk__in=pks).exclude(status="completed").first()
        reason = f"{bad.status}: {bad.error_message[:200]}" if bad else ""
        raise SystemExit(f"bench: not every execution completed: {statuses} (e.g. {reason})")


def last_completed(pks: list[int], *, since: datetime) -> float:
    """Seconds from ``since`` to the last of these executions' ``completed_at`` (PostgreSQL's
    clock, the same machine's): the end of a batch without the wait loop's poll interval."""
    from django.db.models import Max

    from execution.models import Execution

    last = Execution.objects.filter(pk__in=pks).aggregate(last=Max("completed_at"))["last"]
    return float((last - since).total_seconds())


def ours(n: int, workers: int, idle: int) -> tuple[float, list[float]]:
    from datetime import timedelta

    from django.db.models import Count
    from django.utils import timezone

    from execution.models import Execution, QueueItem
    from execution.services.queue import queue_enqueue
    from execution.tasks import wake_workers

    pks = make_executions(n)
    idle_pks = make_executions(idle)
    since = time.time()
    proc = start_cluster(workers)
    try:
        wait_for_cluster(since)
        # Queue everything first, not yet runnable: the clock measures the workers, not the
        # enqueueing (the naive baseline below is timed from its first task too).
        enqueue_all(pks)
        held = QueueItem.objects.filter(execution__pk__in=pks)
        held.update(available_at=timezone.now() + timedelta(hours=1))
        released = timezone.now()
        held.update(available_at=released)
        wake_workers(workers)
        wait_terminal(pks, deadline_s=max(120.0, n / 5))
        elapsed = last_completed(pks, since=released)
        spread = sorted(
            QueueItem.objects.filter(execution__pk__in=pks)
            .values_list("worker_id")
            .annotate(n=Count("id"))
            .values_list("n", flat=True)
        )
        print(f"executions per worker process: {spread}")
        latencies = []
        for pk in idle_pks:
            time.sleep(0.3)  # idle: the workers have drained everything and wait for work
            execution = Execution.objects.get(pk=pk)
            queue_enqueue(execution=execution)  # autocommit: committed (and the wake sent) on return
            committed = time.time()
            wait_terminal([pk], deadline_s=30)
            started_at = Execution.objects.values_list("started_at", flat=True).get(pk=pk)
            latencies.append(started_at.timestamp() - committed)
    finally:
        stop_cluster(proc)
        delete_executions(pks + idle_pks)
    return n / elapsed, latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


NAIVE_LEASE_SQL = """
UPDATE execution_queue q
SET status = 'processing', lease_token = %s, lease_expires_at = now() + interval '30 seconds',
    attempt_count = q.attempt_count + 1, dequeued_at = now(), attempt_started_at = now(), updated_at = now()
FROM executions e
WHERE e.id = %s AND q.execution_id = e.execution_id AND q.status = 'pending'
RETURNING q.id, q.attempt_count, q.max_attempts, q.visibility_timeout_seconds
"""


def naive_one(execution_pk: int) -> None:
    """The naive design, for comparison: one django-q2 task per execution, running it.

    Its queue item is held back (never runnable), so the cluster's waker never sees it and
    the engine's drain loop never helps: the task leases that one item directly and runs it."""
    import uuid

    from django.db import connection

    from execution.worker import claim
    from execution.worker.attempt import attempt_run
    from execution.worker.runtime import worker_id

    token = uuid.uuid4()
    with connection.cursor() as cursor:
        cursor.execute(NAIVE_LEASE_SQL, [str(token), execution_pk])
        row = cursor.fetchone()
    if row is None:
        return
    ctx = claim.context_for(pk=execution_pk)
    ctx.item_id, ctx.attempt, ctx.max_attempts, _ = row
    ctx.lease_token = token
    attempt_run(ctx=ctx, worker_id=worker_id())


def delete_executions(pks: list[int]) -> None:
    """Remove the bench's executions (their events too: the retention escape of the trail)."""
    from execution.models import Execution
    from execution.services.trail import trail_delete_allowed

    with trail_delete_allowed():
        Execution.objects.filter(pk__in=pks).delete()


def raw(n: int, workers: int, naive: bool) -> float:
    """N ``async_task`` calls straight through django-q2's ORM broker -> tasks/s: each runs
    one execution (``naive``) or is a no-op (``math.floor``)."""
    from django.conf import settings
    from django.utils import timezone
    from django_q.models import OrmQ
    from django_q.tasks import async_task

    cluster = settings.Q_CLUSTER["name"]
    OrmQ.objects.filter(key=cluster).delete()
    pks = make_executions(n) if naive else []
    if pks:
        from datetime import timedelta

        from execution.models import QueueItem

        enqueue_all(pks)
        QueueItem.objects.filter(execution__pk__in=pks).update(
            available_at=timezone.now() + timedelta(days=1)
        )
    since = time.time()
    proc = start_cluster(workers)
    try:
        wait_for_cluster(since)
        started = time.monotonic()
        began = timezone.now()
        if naive:
            for pk in pks:
                async_task("bench.queue_throughput.naive_one", pk, save=False)
        else:
            for _ in range(n):
                async_task("math.floor", 1.5, save=False)
        while OrmQ.objects.filter(key=cluster).exists():
            time.sleep(0.05)
        if pks:
            wait_terminal(pks, deadline_s=max(120.0, n / 5))
            elapsed = last_completed(pks, since=began)
        else:
            elapsed = time.monotonic() - started  # a no-op leaves no row: its end is polled
    finally:
        stop_cluster(proc)
        delete_executions(pks)
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--idle", type=int, default=50, help="idle start-latency samples")
    parser.add_argument("--quick", action="store_true", help="50 executions, 10 idle samples (for CI)")
    parser.add_argument(
        "--step",
        choices=("noop", "sleep"),
        default="noop",
        help="noop (inline path) or sleep 0 s (step by step)",
    )
    args = parser.parse_args()
    global STEP_TYPE
    STEP_TYPE = args.step
    n, idle = (50, 10) if args.quick else (args.n, args.idle)

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    ours_rate, latencies = ours(n, args.workers, idle)
    naive_rate = raw(n, args.workers, naive=True)
    raw_rate = raw(n, args.workers, naive=False)
    ms = [v * 1000 for v in latencies]
    print(
        f"executions through the queue ({STEP_TYPE}): {n} on {args.workers} workers: "
        f"{ours_rate:.1f} executions/s"
    )
    print(
        f"idle start latency (commit -> started_at), {len(ms)} samples: "
        f"p50 {percentile(ms, 0.5):.0f} ms, p99 {percentile(ms, 0.99):.0f} ms, max {max(ms):.0f} ms "
        "(goal p99 <= 250 ms)"
    )
    print(
        f"baseline, one django-q2 task per execution: {n} on {args.workers} workers: "
        f"{naive_rate:.1f} executions/s; ratio ours / baseline {ours_rate / naive_rate:.2f}"
    )
    print(
        f"django-q2 raw async_task no-op (broker ceiling): {n} on {args.workers} workers: "
        f"{raw_rate:.1f} tasks/s"
    )
    print(f"ratio ours / django-q2 raw no-op: {ours_rate / raw_rate:.2f} (goal >= 1.0)")


if __name__ == "__main__":
    main()
