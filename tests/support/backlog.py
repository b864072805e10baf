"""A queued backlog written straight into the tables (generate_series): the claim's bench and
its plan test.

Each execution is ``queued`` with one ``noop`` step and a queue item (``pending`` and
claimable since a second ago, or another status) carrying its tenant and environment.
"""

from __future__ import annotations

from django.db import connection

# %(per)s queued noop executions for each tenant of %(tenants)s (ids), claimable a second ago.
BACKLOG_SQL = """
WITH made AS (
INSERT INTO executions (execution_id, tenant_id, actor_id, plan_snapshot, execution_mode, sla_class,
  approval_level, status, status_changed_at, created_at, error_message, trace_id, tags, metadata,
  updated_at, environment, action_class, priority, dry_run, plan_hash)
SELECT gen_random_uuid(), t, %(actor)s, '{"name": "bench", "environment": "dev", "steps": []}'::jsonb,
  'background', 'fast', 0, 'queued', now(), now(), '', '', '[]'::jsonb, '{}'::jsonb, now(), 'dev', 'read',
  %(priority)s, false, ''
FROM unnest(%(tenants)s::bigint[]) AS t, generate_series(1, %(per)s)
RETURNING execution_id, tenant_id
), steps AS (
INSERT INTO execution_steps (step_id, execution_id, step_index, step_name, step_type, target_asset_id,
  target_hostname, status, input_data, error_message, retry_count, max_retries, trace_id, logs,
  created_at, updated_at, action_class)
SELECT gen_random_uuid(), execution_id, 0, 'noop', 'noop', '', '', 'queued', '{}'::jsonb, '', 0, 0, '', '',
  now(), now(), 'read' FROM made
)
INSERT INTO execution_queue (queue_id, execution_id, priority, sla_class, visibility_timeout_seconds,
  attempt_count, max_attempts, last_error, enqueued_at, available_at, status, created_at, updated_at,
  worker_id, tenant_id, environment)
SELECT gen_random_uuid(), execution_id, %(priority)s, 'fast', 30, 0, 3, '',
  now() - interval '10 seconds', now() - interval '1 second', %(status)s, now(), now(), '', tenant_id, 'dev'
FROM made
"""


def backlog_seed(
    *, tenants: list[int], per: int, actor_id: int, priority: int = 5, status: str = "pending"
) -> None:
    """``per`` queued executions for each tenant id of ``tenants``."""
    with connection.cursor() as cursor:
        cursor.execute(
            BACKLOG_SQL,
            {"tenants": tenants, "per": per, "actor": actor_id, "priority": priority, "status": status},
        )
