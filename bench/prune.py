"""Retention speed: executions pruned per second, and the longest queue claim meanwhile.

    .venv/bin/python bench/prune.py [--rows 200000] [--batch 500] [--quick]

Seeds ``--rows`` finished executions (one step, two events, a queue item each; approvals,
votes and dead letters on a share of them) dated 1971 — so the prune (cutoff 1972) touches
nothing but the seeded history on any database — then runs ``retention_prune`` while a
thread claims from the queue in a loop, and prints executions (and rows) pruned per second
and the claim latency percentiles measured during the prune. ``--quick``: 5,000 rows.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconductor.settings")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rows = 5_000 if args.quick else args.rows

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from execution.models import Tenant
    from execution.services.retention import retention_prune
    from execution.worker.claim import claim_with_context
    from tests.support.history import history_seed

    days_since_1971 = (datetime.now(UTC) - datetime(1971, 1, 1, tzinfo=UTC)).days
    tenant, _ = Tenant.objects.get_or_create(slug="bench-prune")
    actor, _ = get_user_model().objects.get_or_create(username="bench-prune-actor")
    started = time.perf_counter()
    history_seed(
        tenant_id=tenant.pk,
        actor_id=actor.pk,
        rows=rows // 2,
        age_days=(days_since_1971 - 300, days_since_1971),
    )
    history_seed(
        tenant_id=tenant.pk,
        actor_id=actor.pk,
        rows=rows - rows // 2,
        age_days=(days_since_1971 - 300, days_since_1971),
        status="failed",
    )
    print(f"seeded {rows} finished executions in {time.perf_counter() - started:.1f}s")

    stop = threading.Event()
    latencies: list[float] = []

    def claimer() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '1s'")
        try:
            while not stop.is_set():
                t0 = time.perf_counter()
                claim_with_context(worker_id="bench-prune")
                latencies.append((time.perf_counter() - t0) * 1000)
                time.sleep(0.01)
        finally:
            connection.close()

    thread = threading.Thread(target=claimer)
    thread.start()
    try:
        summary = retention_prune(older_than_days=days_since_1971 - 365, batch_size=args.batch)
    finally:
        stop.set()
        thread.join(30)
    total_rows = sum(summary.counts.values())
    pruned = summary.counts.get("executions", 0)
    print(summary.line())
    print(
        f"pruned {pruned} executions in {summary.seconds:.1f}s: {pruned / summary.seconds:.0f} executions/s, "
        f"{total_rows / summary.seconds:.0f} rows/s (batch {args.batch})"
    )
    if latencies:
        ordered = sorted(latencies)
        p99 = ordered[int(len(ordered) * 0.99) - 1] if len(ordered) >= 100 else ordered[-1]
        print(
            f"queue claims during the prune: {len(latencies)}, p50 {statistics.median(latencies):.1f} ms, "
            f"p99 {p99:.1f} ms, max {ordered[-1]:.1f} ms"
        )
    if not tenant.executions.exists():
        tenant.delete()


if __name__ == "__main__":
    main()
