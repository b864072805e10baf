"""Cost of a /metrics scrape, of the summary and of the worker's claim, on an empty history and
on a large one, in the same run.

    DATABASE_URL=postgres://.../scratch .venv/bin/python bench/metrics_scrape.py [--rows 1000000]

1. Baseline: times ``metrics_render()`` (every /metrics family), ``metrics_summary()`` (1 h
   and 7 d, all tenants and one) and ``claim_with_context()`` (the worker's claim, over
   ``--claims`` pending items) before any history is added.
2. Inserts ``--rows`` finished executions (two steps and a closed queue item each), their
   completions spread over the last two hours, so that half of them fall in the 1 h window:
   in one statement with the rollup triggers off, then ``monitoring_rollups_backfill()``
   for the new tenant (the rows the triggers would have written; a test checks the two agree).
3. Times the same again. Prints p50/p99 of each, the ratio to the baseline, and rolls
   everything back: the database is left as it was.

Uses DATABASE_URL or the embedded PostgreSQL (migrated first).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconductor.settings")

# Ends spread over the last 7200 s, run times 0-32 s, steps of 0-20 s, 0-2 s in the queue.
SEED_SQL = """
INSERT INTO executions (execution_id, tenant_id, actor_id, plan_snapshot, execution_mode, sla_class,
  approval_level, status, status_changed_at, created_at, started_at, completed_at, error_message,
  trace_id, tags, metadata, updated_at, environment, action_class, priority, dry_run, plan_hash)
SELECT gen_random_uuid(), %(tenant)s, %(actor)s, '{}'::jsonb, 'background',
  (ARRAY['fast','medium','long'])[1 + i %% 3]::sla_class, 0,
  (ARRAY['completed','completed','completed','failed','timeout','partial'])[1 + i %% 6]::execution_status,
  t.ended, t.started - interval '2 seconds', t.started, t.ended,
  '', '', '[]'::jsonb, '{}'::jsonb, now(), 'dev', 'read', 5, false, ''
FROM generate_series(1, %(rows)s) AS i,
  LATERAL (SELECT now() - make_interval(secs => i %% 7200) AS ended,
                  now() - make_interval(secs => i %% 7200 + (i %% 97) / 3.0) AS started) AS t;
INSERT INTO execution_steps (step_id, execution_id, step_index, step_name, step_type, target_asset_id,
  target_hostname, status, input_data, error_message, retry_count, max_retries, trace_id, logs,
  created_at, updated_at, action_class, started_at, completed_at, duration_ms)
SELECT gen_random_uuid(), e.execution_id, s, 'step', (ARRAY['command','http','sql'])[1 + (e.id + s) %% 3],
  '', '', 'completed', '{}'::jsonb, '', 0, 0, '', '', now(), now(), 'read', e.started_at, e.completed_at,
  ((e.id * 37 + s * 11) %% 20000)
FROM executions e CROSS JOIN generate_series(0, 1) AS s
WHERE e.tenant_id = %(tenant)s AND e.completed_at IS NOT NULL;
INSERT INTO execution_queue (queue_id, execution_id, priority, sla_class, visibility_timeout_seconds,
  attempt_count, max_attempts, last_error, enqueued_at, dequeued_at, completed_at, status, created_at,
  updated_at, worker_id, tenant_id, environment)
SELECT gen_random_uuid(), e.execution_id, 5, e.sla_class, 30, 1, 3, '', e.created_at,
  e.started_at - make_interval(secs => (e.id %% 11) / 10.0), e.completed_at, 'completed', now(), now(), '',
  e.tenant_id, e.environment
FROM executions e WHERE e.tenant_id = %(tenant)s AND e.completed_at IS NOT NULL;
ANALYZE executions; ANALYZE execution_steps; ANALYZE execution_queue;
"""

# The rollup triggers of monitoring/migrations/0004_rollups.py, off while the seed runs.
TRIGGERS = {
    "executions": ["monitoring_execution_finished", "monitoring_execution_inserted_finished"],
    "execution_steps": ["monitoring_step_finished", "monitoring_step_inserted_finished"],
    "execution_queue": ["monitoring_queue_claim_ended"],
}

# Pending items for the claim to lease: queued executions with one step each.
CLAIMABLE_SQL = """
WITH made AS (
INSERT INTO executions (execution_id, tenant_id, actor_id, plan_snapshot, execution_mode, sla_class,
  approval_level, status, status_changed_at, created_at, error_message, trace_id, tags, metadata,
  updated_at, environment, action_class, priority, dry_run, plan_hash)
SELECT gen_random_uuid(), %(tenant)s, %(actor)s, '{}'::jsonb, 'background', 'fast', 0, 'queued', now(),
  now(), '', '', '[]'::jsonb, '{}'::jsonb, now(), 'dev', 'read', 5, false, ''
FROM generate_series(1, %(claims)s)
RETURNING execution_id
), steps AS (
INSERT INTO execution_steps (step_id, execution_id, step_index, step_name, step_type, target_asset_id,
  target_hostname, status, input_data, error_message, retry_count, max_retries, trace_id, logs,
  created_at, updated_at, action_class)
SELECT gen_random_uuid(), execution_id, 0, 'step', 'noop', '', '', 'queued', '{}'::jsonb, '', 0, 0, '', '',
  now(), now(), 'read' FROM made
)
INSERT INTO execution_queue (queue_id, execution_id, priority, sla_class, visibility_timeout_seconds,
  attempt_count, max_attempts, last_error, enqueued_at, available_at, status, created_at, updated_at,
  worker_id, tenant_id, environment)
SELECT gen_random_uuid(), execution_id, 5, 'fast', 30, 0, 3, '', now(), now() - interval '1 second',
  'pending', now(), now(), '', %(tenant)s, 'dev' FROM made
"""


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
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--claims", type=int, default=200)
    args = parser.parse_args()

    import django

    django.setup()
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from execution.models import Tenant
    from execution.worker.claim import claim_with_context
    from monitoring.metrics import metrics_render
    from monitoring.selectors.summary import metrics_summary

    def set_triggers(enabled: bool) -> None:
        verb = "ENABLE" if enabled else "DISABLE"
        with connection.cursor() as cursor:
            # ALTER TABLE refuses while deferred foreign key checks are pending: run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for table, names in TRIGGERS.items():
                for name in names:
                    cursor.execute(f"ALTER TABLE {table} {verb} TRIGGER {name}")

    def measure(tenant_id: int, actor_id: int) -> dict[str, list[float]]:
        with connection.cursor() as cursor:
            cursor.execute(CLAIMABLE_SQL, {"tenant": tenant_id, "actor": actor_id, "claims": args.claims})
        hour, week = timedelta(hours=1), timedelta(days=7)
        cases: dict[str, Callable[[], object]] = {
            "/metrics scrape": metrics_render,
            "summary 1h, all tenants": lambda: metrics_summary(window=hour, tenant_ids=None),
            "summary 1h, 1 tenant": lambda: metrics_summary(window=hour, tenant_ids=[tenant_id]),
            "summary 7d, all tenants": lambda: metrics_summary(window=week, tenant_ids=None),
        }
        figures = {name: timed(fn, args.repeat) for name, fn in cases.items()}
        claims = timed(lambda: claim_with_context(worker_id="bench-metrics"), args.claims)
        figures["claim (worker)"] = claims
        return figures

    try:
        with transaction.atomic():
            tenant = Tenant.objects.create(slug="bench-metrics")
            actor = get_user_model().objects.create(username="bench-metrics-actor")
            baseline = measure(tenant.pk, actor.pk)

            set_triggers(False)
            started = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute(SEED_SQL, {"tenant": tenant.pk, "actor": actor.pk, "rows": args.rows})
                seeded = time.perf_counter() - started
                set_triggers(True)
                started = time.perf_counter()
                cursor.execute("SELECT monitoring_rollups_backfill(%s)", [tenant.pk])
                cursor.execute("ANALYZE monitoring_rollups")
            backfilled = time.perf_counter() - started
            print(
                f"seeded {args.rows} executions, {2 * args.rows} steps in {seeded:.1f}s; "
                f"rollups backfilled in {backfilled:.1f}s"
            )
            loaded = measure(tenant.pk, actor.pk)

            width = max(len(name) for name in baseline)
            print(f"{'':{width}}  {'empty history':>26}  {f'{args.rows} finished':>26}  p50 ratio")
            for name, before in baseline.items():
                after = loaded[name]
                b50, a50 = statistics.median(before), statistics.median(after)
                print(
                    f"{name:{width}}  p50 {b50:7.2f} ms p99 {p99(before):7.2f} ms"
                    f"  p50 {a50:7.2f} ms p99 {p99(after):7.2f} ms  {a50 / b50:6.2f}"
                )
            print(f"/metrics body: {len(metrics_render())} bytes")
            raise Rollback
    except Rollback:
        print("rolled back")


if __name__ == "__main__":
    main()
