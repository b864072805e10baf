"""Cost of a /metrics scrape and of the summary endpoint's SQL on a large history.

    DATABASE_URL=postgres://.../scratch .venv/bin/python bench/metrics_scrape.py [--rows 200000]

Inserts ``--rows`` ended executions (two steps and a queue item each) in one transaction,
times ``metrics_render()`` (every /metrics family) and ``metrics_summary(window=1h)``, prints
the figures and rolls everything back: the database is left as it was.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsconductor.settings")

SEED_SQL = """
INSERT INTO executions (execution_id, tenant_id, actor_id, plan_snapshot, execution_mode, sla_class,
  approval_level, status, status_changed_at, created_at, started_at, completed_at, error_message,
  trace_id, tags, metadata, updated_at, environment, action_class, priority, dry_run, plan_hash)
SELECT gen_random_uuid(), %(tenant)s, %(actor)s, '{}'::jsonb, 'background',
  (ARRAY['fast','medium','long'])[1 + i %% 3]::sla_class, 0,
  (ARRAY['completed','completed','completed','failed','timeout','partial'])[1 + i %% 6]::execution_status,
  now(), now() - make_interval(secs => i %% 7200), now() - make_interval(secs => i %% 7200 + 5),
  now() - make_interval(secs => i %% 7200) + make_interval(secs => (i %% 97) / 3.0),
  '', '', '[]'::jsonb, '{}'::jsonb, now(), 'dev', 'read', 5, false, ''
FROM generate_series(1, %(rows)s) AS i;
INSERT INTO execution_steps (step_id, execution_id, step_index, step_name, step_type, target_asset_id,
  target_hostname, status, input_data, error_message, retry_count, max_retries, trace_id, logs,
  created_at, updated_at, action_class, started_at, completed_at, duration_ms)
SELECT gen_random_uuid(), e.execution_id, s, 'step', (ARRAY['command','http','sql'])[1 + (e.id + s) %% 3],
  '', '', 'completed', '{}'::jsonb, '', 0, 0, '', '', now(), now(), 'read', e.started_at, e.completed_at,
  ((e.id * 37 + s * 11) %% 20000)
FROM executions e CROSS JOIN generate_series(0, 1) AS s WHERE e.tenant_id = %(tenant)s;
INSERT INTO execution_queue (queue_id, execution_id, priority, sla_class, visibility_timeout_seconds,
  attempt_count, max_attempts, last_error, enqueued_at, dequeued_at, completed_at, status, created_at,
  updated_at, worker_id)
SELECT gen_random_uuid(), e.execution_id, 5, e.sla_class, 30, 1, 3, '', e.created_at,
  e.started_at, e.completed_at, 'completed', now(), now(), ''
FROM executions e WHERE e.tenant_id = %(tenant)s;
ANALYZE executions; ANALYZE execution_steps; ANALYZE execution_queue;
"""


class Rollback(Exception):
    pass


def timed(fn: object, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import django

    django.setup()
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from execution.models import Tenant
    from monitoring.metrics import metrics_render
    from monitoring.selectors.summary import metrics_summary

    try:
        with transaction.atomic():
            tenant = Tenant.objects.create(slug="bench-metrics")
            actor = get_user_model().objects.create(username="bench-metrics-actor")
            started = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute(SEED_SQL, {"tenant": tenant.pk, "actor": actor.pk, "rows": args.rows})
            took = time.perf_counter() - started
            print(f"seeded {args.rows} executions, {2 * args.rows} steps in {took:.1f}s")
            size = len(metrics_render())
            for name, fn in (
                ("/metrics scrape", metrics_render),
                ("summary window=1h", lambda: metrics_summary(window=timedelta(hours=1), tenant_ids=None)),
                (
                    "summary window=1h, 1 tenant",
                    lambda: metrics_summary(window=timedelta(hours=1), tenant_ids=[tenant.pk]),
                ),
            ):
                samples = timed(fn, args.repeat)
                print(f"{name:30} p50 {statistics.median(samples):8.1f} ms  max {max(samples):8.1f} ms")
            print(f"/metrics body: {size} bytes")
            raise Rollback
    except Rollback:
        print("rolled back")


if __name__ == "__main__":
    main()
