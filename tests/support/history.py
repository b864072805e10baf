"""Generate a large finished history in SQL (generate_series): the retention test and bench.

Each execution gets one step, two events and a queue item (completed when finished; a
queued or running one is parked a year ahead so no worker or reaper picks it up); every 10th an approval
with one vote, every 7th (failed ones) a dead letter. ``completed_at`` is spread over
``age_days`` (min, max) before now.
"""

from __future__ import annotations

from typing import Any

from django.db import connection

SEED_SQL = """
WITH made AS (
INSERT INTO executions (execution_id, tenant_id, actor_id, plan_snapshot, execution_mode, sla_class,
  approval_level, status, status_changed_at, created_at, started_at, completed_at, error_message,
  trace_id, tags, metadata, updated_at, environment, action_class, priority, dry_run, plan_hash)
SELECT gen_random_uuid(), %(tenant)s, %(actor)s, '{"name": "history"}'::jsonb, 'background', 'fast', 0,
  %(status)s::execution_status, ts, ts - interval '10 seconds', ts - interval '5 seconds',
  CASE WHEN %(finished)s THEN ts END, '', '', '[]'::jsonb, '{}'::jsonb, ts, 'dev', 'read', 5, false, ''
FROM (SELECT i, now() - make_interval(days => %(min_days)s)
             - make_interval(secs => ((i::bigint * 7919) %% greatest(1, (%(max_days)s - %(min_days)s) * 86400))::int) AS ts
      FROM generate_series(1, %(rows)s) AS i) AS g
RETURNING id, execution_id, status, completed_at, created_at
), steps AS (
INSERT INTO execution_steps (step_id, execution_id, step_index, step_name, step_type, target_asset_id,
  target_hostname, status, input_data, error_message, retry_count, max_retries, trace_id, logs,
  created_at, updated_at, action_class, started_at, completed_at, duration_ms)
SELECT gen_random_uuid(), execution_id, 0, 'step', 'noop', '', '', status, '{}'::jsonb, '', 0, 0, '', '',
  created_at, created_at, 'read', created_at, completed_at, 5 FROM made
), events AS (
INSERT INTO execution_events (event_id, execution_id, event_type, to_status, actor_type, details,
  error_message, created_at, trace_id, tenant_id)
SELECT gen_random_uuid(), execution_id, t, NULL, 'system', '{}'::jsonb, '', created_at, '', %(tenant)s
FROM made CROSS JOIN (VALUES ('created'), ('started')) AS v(t)
), queue AS (
INSERT INTO execution_queue (queue_id, execution_id, priority, sla_class, visibility_timeout_seconds,
  attempt_count, max_attempts, last_error, enqueued_at, status, created_at, updated_at, worker_id,
  available_at, lease_expires_at, tenant_id, environment)
SELECT gen_random_uuid(), execution_id, 5, 'fast', 30, 1, 3, '', created_at,
  CASE status WHEN 'queued' THEN 'pending' WHEN 'running' THEN 'processing' ELSE 'completed' END,
  created_at, created_at, '',
  -- never claimed nor reaped while a test or bench runs: history, not work
  now() + interval '1 year', CASE WHEN status = 'running' THEN now() + interval '1 year' END,
  %(tenant)s, 'dev'
FROM made
), approvals AS (
INSERT INTO approvals (approval_id, execution_id, approval_level, plan_hash, approver_comment, state,
  requested_at, expires_at, created_at, updated_at)
SELECT gen_random_uuid(), execution_id, 1, repeat('a', 64), '', 'approved', created_at,
  created_at + interval '1 hour', created_at, created_at
FROM made WHERE id %% 10 = 0
RETURNING id, created_at
), votes AS (
INSERT INTO approval_votes (approval_id, voter_id, decision, comment, created_at)
SELECT id, %(actor)s, 'approve', '', created_at FROM approvals
)
INSERT INTO execution_dlq (dlq_id, execution_id, failure_reason, failure_details, attempt_count, last_error,
  sla_class, failed_at, requeued, created_at, archived)
SELECT gen_random_uuid(), execution_id, 'worker_lost', '{}'::jsonb, 3, 'boom', 'fast',
  coalesce(completed_at, created_at), false, created_at, false
FROM made WHERE id %% 7 = 0 AND status = 'failed'
"""


def history_seed(
    *, tenant_id: int, actor_id: int, rows: int, age_days: tuple[int, int], status: str = "completed"
) -> None:
    finished = status in ("completed", "failed", "cancelled", "timeout", "partial", "rejected")
    params: dict[str, Any] = {
        "tenant": tenant_id,
        "actor": actor_id,
        "rows": rows,
        "status": status,
        "finished": finished,
        "min_days": age_days[0],
        "max_days": age_days[1],
    }
    with connection.cursor() as cursor:
        cursor.execute(SEED_SQL, params)
        cursor.execute("ANALYZE executions; ANALYZE execution_events; ANALYZE execution_steps")
