"""The claim's cost with 1, 10 and 100 tenants queued, and behind a full tenant's deep backlog.

    .venv/bin/python bench/claim.py [--items 20000] [--claims 200] [--quick]

For each case ``--items`` queued one-step executions are written straight into the tables
(committed, then vacuumed and analysed, as a queue autovacuum keeps), then ``--claims`` claims
are timed through the worker's own prepared claim (``claim_with_context``: the fair claim and
the attempt's context, one statement), each in a transaction rolled back so every claim sees
the same queue:

1. the items spread over 1, 10 and 100 tenants (the fair claim visits every tenant with
   work, so this is where its cost grows);
2. a tenant at its concurrency limit of 1 (one item running) with all ``--items`` queued at
   priority 1, in front of 100 items of another tenant: the last engine's claim stepped over
   that backlog on every claim (20-33 ms at 20,000).

The baseline in the same run is the last engine's claim order (priority then age over the
whole queue, the limit test per item, then the same context read), prepared the same way.
Prints p50/p99 ms of both per case. The bench's rows are deleted after each case.

Uses DATABASE_URL or the embedded PostgreSQL (migrated first).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconductor.settings")

# The last engine's claim: priority then age over the whole pending queue, each candidate
# tested against the full limits through its execution; the same lease and context read.
BASELINE_NEXT = """
WITH full_scopes AS MATERIALIZED (
    SELECT l.tenant_id, l.environment FROM concurrency_limits l
    WHERE (SELECT count(*) FROM execution_queue uq JOIN executions ue ON ue.execution_id = uq.execution_id
           WHERE uq.status = 'processing' AND ue.tenant_id = l.tenant_id
             AND (l.environment = '' OR ue.environment = l.environment)) >= l.max_running)
, next AS (
SELECT q.id FROM execution_queue q
WHERE q.status = 'pending' AND (q.available_at IS NULL OR q.available_at <= now())
  AND (NOT EXISTS (SELECT 1 FROM full_scopes)
       OR NOT EXISTS (SELECT 1 FROM executions e WHERE e.execution_id = q.execution_id
                      AND EXISTS (SELECT 1 FROM full_scopes f
                                  WHERE f.tenant_id = e.tenant_id AND f.environment IN ('', e.environment))))
ORDER BY q.priority, q.enqueued_at, q.id
LIMIT 1
FOR UPDATE OF q SKIP LOCKED
)"""

CLEANUP_SQL = """
DELETE FROM execution_steps
WHERE execution_id IN (SELECT execution_id FROM executions WHERE tenant_id = ANY(%(t)s));
DELETE FROM execution_queue
WHERE execution_id IN (SELECT execution_id FROM executions WHERE tenant_id = ANY(%(t)s));
DELETE FROM executions WHERE tenant_id = ANY(%(t)s);
DELETE FROM concurrency_limits WHERE tenant_id = ANY(%(t)s);
"""


def baseline_sql() -> str:
    """The last engine's claim statement, built from the worker's context fragments."""
    from execution.worker import claim

    ours = claim.CLAIM_SQL
    tail = ours[ours.index("claimed AS (") :]
    return BASELINE_NEXT + ", " + tail


class Rollback(Exception):
    pass


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--claims", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="2,000 items, 30 claims (for CI)")
    args = parser.parse_args()
    items, claims = (2_000, 30) if args.quick else (args.items, args.claims)

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, transaction

    from execution.enums import Role
    from execution.models import ConcurrencyLimit, Membership, Tenant
    from execution.worker.claim import claim_with_context
    from tests.support.backlog import backlog_seed

    call_command("migrate", interactive=False, verbosity=0)

    from execution.worker.sql import Prepared

    baseline = Prepared("bench_last_claim", baseline_sql())

    def claim_once() -> None:
        try:
            with transaction.atomic():
                if claim_with_context(worker_id="bench:1") is None:
                    raise SystemExit("bench: the claim found nothing to claim")
                raise Rollback
        except Rollback:
            pass

    def baseline_once() -> None:
        try:
            with transaction.atomic():
                row = baseline.fetchone({"token": str(uuid.uuid4()), "lease": 30, "worker": "bench:1"})
                if row is None:
                    raise SystemExit("bench: the baseline found nothing to claim")
                raise Rollback
        except Rollback:
            pass

    def seed(tenants: list[int], per: int, *, priority: int = 5, status: str = "pending") -> None:
        backlog_seed(tenants=tenants, per=per, actor_id=actor.pk, priority=priority, status=status)

    def measure(label: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE execution_queue")
            cursor.execute("VACUUM ANALYZE executions")
            cursor.execute("ANALYZE concurrency_limits")
        ours = timed(claim_once, claims)
        base = timed(baseline_once, claims)
        print(
            f"{label}: claim p50 {statistics.median(ours):.2f} ms, p99 {p99(ours):.2f} ms; "
            f"baseline (last engine's claim) p50 {statistics.median(base):.2f} ms, p99 {p99(base):.2f} ms"
        )

    cases: list[tuple[str, Callable[[list[int]], None]]] = []
    for count in (1, 10, 100):

        def spread(made: list[int], count: int = count) -> None:
            seed(made[:count], items // count)

        cases.append((f"{items} queued over {count} tenant(s)", spread))

    def full_tenant(made: list[int]) -> None:
        full, other = made[0], made[1]
        ConcurrencyLimit.objects.create(tenant_id=full, environment="", max_running=1)
        seed([full], 1, status="processing")  # its one slot is taken
        seed([full], items, priority=1)
        seed([other], 100)

    cases.append((f"{items} queued at priority 1 by a tenant at its limit, 100 of another", full_tenant))

    actor, _ = get_user_model().objects.get_or_create(username="bench-claim")
    made = []
    for n in range(100):
        tenant, _ = Tenant.objects.get_or_create(slug=f"bench-claim-{n}", defaults={"name": f"bench {n}"})
        Membership.objects.get_or_create(tenant=tenant, user=actor, defaults={"role": Role.OPERATOR})
        made.append(tenant.pk)
    for label, fill in cases:
        try:
            fill(made)
            measure(label)
        finally:
            with connection.cursor() as cursor:
                cursor.execute(CLEANUP_SQL, {"t": made})
    print("the bench's rows were deleted")


if __name__ == "__main__":
    main()
