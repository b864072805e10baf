"""Asset locks under contention through real worker processes, against no lock, in one run.

    .venv/bin/python bench/locks.py [--n 200] [--rounds 9] [--workers 2] [--step noop|sleep] [--quick]

One ``manage.py qcluster`` (``--workers`` processes) drains N one-step ``noop`` executions
three ways (each batch queued first, then released at once; the clock runs from release to
the last one's ``completed_at``, as PostgreSQL recorded it: a 200-execution batch lasts under
a second, so polling for its end would add up to a tenth of it):

1. no target: no lock (the inline path, two statements an execution);
2. hot asset: every step *modifies* the same asset, so they hold it one at a time: the
   others park in the asset's line and each release wakes the next;
3. read asset: every step *reads* the same asset, so they hold it side by side (shared).

The three ways take turns, ``--rounds`` times (default 9), each round starting with the next
way (no one of them always first after the previous round's batches), so that neither the
cluster's warm-up nor a burst of other load on the machine falls on one of them only; each
round's rates are printed. Prints the median executions/s of each way and its ratio to (1):
the median of the rounds' own ratios (each round's batches ran back to back, so the load
moves less within a round than across the run; single batches move 2x here); goals: hot
>= 0.5, read >= 0.9. Also how often the executions parked in the line (``lock_wait`` events).

``--step noop`` (the default) measures the inline path: a noop plan on an asset is recorded,
its locks taken and given, in the one statement after the claim (docs/engine.md "Locks").
``--step sleep`` (a 0 s sleep, a runner with an effect) measures the step-by-step path every
real step takes: claim, take, start, finish, and the park in the line when the asset is busy.

Uses DATABASE_URL or the embedded PostgreSQL (migrated first); the rows it creates are
deleted at the end. Exits non-zero when an execution does not complete.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconductor.settings")


def make_executions(n: int, *, asset_pk: int | None, action_class: str, step_type: str = "noop") -> list[int]:
    from django.contrib.auth import get_user_model

    from execution.enums import ExecutionStatus, Role
    from execution.models import Execution, ExecutionStep, Membership, StoredPolicy, Tenant, TimeoutPolicy
    from execution.plans import plan_hash

    tenant, _ = Tenant.objects.get_or_create(slug="bench-locks", defaults={"name": "bench-locks"})
    actor, _ = get_user_model().objects.get_or_create(username="bench-locks")
    Membership.objects.get_or_create(tenant=tenant, user=actor, defaults={"role": Role.OPERATOR})
    step: dict[str, object] = {"name": step_type, "type": step_type, "action_class": action_class}
    if step_type == "sleep":
        step["params"] = {"seconds": 0}
    if asset_pk is not None:
        step["target"] = {"asset_id": asset_pk}
    plan = {"name": "bench locks", "environment": "dev", "steps": [step]}
    policy = StoredPolicy.of(TimeoutPolicy.objects.get(sla_class="fast", action_class=action_class)).as_json()
    executions = Execution.objects.bulk_create(
        Execution(
            tenant=tenant,
            actor=actor,
            plan_snapshot=plan,
            plan_hash=plan_hash(plan),
            timeout_policy=policy,
            execution_mode="background",
            sla_class="fast",
            action_class=action_class,
            status=ExecutionStatus.APPROVED,
        )
        for _ in range(n)
    )
    ExecutionStep.objects.bulk_create(
        ExecutionStep(
            execution=e,
            step_index=0,
            step_name=step_type,
            step_type=step_type,
            action_class=action_class,
            target_asset_id=str(asset_pk) if asset_pk is not None else "",
        )
        for e in executions
    )
    return [e.pk for e in executions]


def bench_asset() -> int:
    from execution.models import Asset, Tenant

    tenant, _ = Tenant.objects.get_or_create(slug="bench-locks", defaults={"name": "bench-locks"})
    # A noop never connects: the address is a documentation one (TEST-NET-1).
    asset, _ = Asset.objects.get_or_create(
        tenant=tenant, hostname="bench-hot", defaults={"connection_type": "ssh", "address": "192.0.2.10"}
    )
    return int(asset.pk)


def drain(pks: list[int]) -> float:
    """Queue ``pks`` held back, release them at once; executions/s from the release to the
    last ``completed_at``."""
    from datetime import timedelta

    from django.db.models import Max
    from django.utils import timezone

    from bench.queue_throughput import enqueue_all, wait_terminal
    from execution.models import Execution, QueueItem
    from execution.tasks import wake_workers

    enqueue_all(pks)
    held = QueueItem.objects.filter(execution__pk__in=pks)
    held.update(available_at=timezone.now() + timedelta(hours=1))
    released = timezone.now()
    held.update(available_at=released)
    wake_workers(len(pks))
    wait_terminal(pks, deadline_s=max(120.0, len(pks) / 2))
    last = Execution.objects.filter(pk__in=pks).aggregate(last=Max("completed_at"))["last"]
    return len(pks) / (last - released).total_seconds()


def waits(pks: list[int]) -> int:
    """How often these executions parked in a lock's line (``lock_wait`` events)."""
    from execution.models import ExecutionEvent

    return ExecutionEvent.objects.filter(execution__pk__in=pks, event_type="lock_wait").count()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=9, help="turns of the three ways; medians reported")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--step", choices=["noop", "sleep"], default="noop", help="the one step's type")
    parser.add_argument("--quick", action="store_true", help="50 executions a run (for CI)")
    args = parser.parse_args()
    n = 50 if args.quick else args.n

    import django

    django.setup()
    from django.core.management import call_command

    from bench.queue_throughput import delete_executions, start_cluster, stop_cluster, wait_for_cluster

    call_command("migrate", interactive=False, verbosity=0)
    asset = bench_asset()
    ways = {
        "no target": (None, "modify"),
        "hot asset (modify)": (asset, "modify"),
        "read asset (read)": (asset, "read"),
    }
    rounds = 1 if args.quick else args.rounds
    runs = {
        name: [
            make_executions(n, asset_pk=target, action_class=action_class, step_type=args.step)
            for _ in range(rounds)
        ]
        for name, (target, action_class) in ways.items()
    }
    rates: dict[str, list[float]] = {name: [] for name in ways}
    since = time.time()
    proc = start_cluster(args.workers)
    try:
        wait_for_cluster(since)
        names = list(ways)
        for turn in range(rounds):
            for name in names[turn % len(names) :] + names[: turn % len(names)]:
                rates[name].append(drain(runs[name][turn]))
            print(
                f"round {turn + 1}: " + ", ".join(f"{name} {rates[name][-1]:.1f}/s" for name in ways),
                flush=True,
            )
        counted = {name: sum(waits(pks) for pks in batches) for name, batches in runs.items()}
    finally:
        stop_cluster(proc)
        delete_executions([pk for batches in runs.values() for pks in batches for pk in pks])
    median = {name: statistics.median(values) for name, values in rates.items()}
    ratio = {
        name: statistics.median(r / b for r, b in zip(values, rates["no target"], strict=True))
        for name, values in rates.items()
    }
    for name, rate in median.items():
        print(
            f"{name}: {n} {args.step} executions on {args.workers} workers: {rate:.1f} executions/s, "
            f"ratio to no target {ratio[name]:.2f}; lock waits {counted[name]}"
            + (
                f" (medians of {rounds} rounds; ratio of the medians {rate / median['no target']:.2f})"
                if rounds > 1
                else ""
            )
        )
    print(
        f"goals: hot asset >= 0.5 (got {ratio['hot asset (modify)']:.2f}), "
        f"read asset >= 0.9 (got {ratio['read asset (read)']:.2f})"
    )


if __name__ == "__main__":
    main()
