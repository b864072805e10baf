"""Concurrency limits in the claim (docs/contract.md#concurrency-limits).

A limit caps the executions of a tenant (or of one of its environments) that hold a claim:
queue items in ``processing`` (claimed, running, or between attempts' steps). The claim
honours it atomically across any number of workers in two moves:

1. the claim statement skips every (tenant, environment) whose scope is already at its
   limit (``FULL_SCOPES_CTE``) in one step, its backlog never read, so a tenant at its limit
   never holds up, or slows, anyone else's work;
2. when the item it took belongs to a limited tenant, the claim's transaction then takes the
   tenant's advisory transaction lock and counts again in a new statement (a fresh snapshot,
   which sees every claim committed by whoever held the lock before): over the limit, the
   claim is rolled back and the worker claims again. Two workers racing for the last slot
   thus both pass step 1 and are serialised in step 2, where the second one sees the first.

Unlimited tenants pay nothing but step 1's lookup in an empty (or small) table.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction

from execution.enums import ActorType
from execution.models import Execution
from execution.services.events import event_record

# pg_advisory_xact_lock(LOCK_CLASS, tenant_id): claims of one limited tenant; (LOCK_CLASS, 0):
# the recorder of concurrency_wait events.
LOCK_CLASS = 0x4C494D

# Claimed items of a limit's scope (l = the concurrency_limits row); the queue item carries
# its execution's tenant and environment.
_USED = """(SELECT count(*) FROM execution_queue uq
    WHERE uq.status = 'processing' AND uq.tenant_id = l.tenant_id
      AND (l.environment = '' OR uq.environment = l.environment))"""

# Computed once per claim (MATERIALIZED: never re-run per candidate): the scopes that are full.
FULL_SCOPES_CTE = f"""full_scopes AS MATERIALIZED (
    SELECT l.tenant_id, l.environment FROM concurrency_limits l WHERE {_USED} >= l.max_running)"""  # noqa: S608

# For a claim's RETURNING, with ``e`` its executions row: does any limit apply at all?
LIMITED_SQL = """EXISTS (SELECT 1 FROM concurrency_limits l
    WHERE l.tenant_id = e.tenant_id AND l.environment IN ('', e.environment))"""

OVER_LIMIT_SQL = f"""SELECT EXISTS (SELECT 1 FROM concurrency_limits l
    WHERE l.tenant_id = %(tenant)s AND l.environment IN ('', %(environment)s)
      AND {_USED} > l.max_running)"""  # noqa: S608 - constant fragments only

# Runnable items held back by a full limit that have not said so since they were queued.
WAITING_SQL = f"""
WITH {FULL_SCOPES_CTE}
SELECT e.id, l.environment, l.max_running, {_USED}
FROM execution_queue q
JOIN executions e ON e.execution_id = q.execution_id
JOIN LATERAL (SELECT l.* FROM concurrency_limits l JOIN full_scopes f USING (tenant_id, environment)
              WHERE l.tenant_id = e.tenant_id AND l.environment IN ('', e.environment)
              ORDER BY l.environment DESC LIMIT 1) l ON true
WHERE q.status = 'pending' AND (q.available_at IS NULL OR q.available_at <= now())
  AND NOT EXISTS (SELECT 1 FROM execution_events ev
                  WHERE ev.execution_id = e.execution_id AND ev.event_type = 'concurrency_wait'
                    AND ev.created_at >= e.status_changed_at)
ORDER BY q.priority, q.enqueued_at, q.id
LIMIT %(limit)s
"""  # noqa: S608 - constant fragments only


def limits_claim_over(*, cursor: Any, tenant_id: int, environment: str) -> bool:
    """Inside the claim's transaction, after it took an item of a limited tenant: wait for
    the tenant's other claims to commit, then count again. True = over a limit (roll back)."""
    cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_CLASS, tenant_id])
    cursor.execute(OVER_LIMIT_SQL, {"tenant": tenant_id, "environment": environment})
    return bool(cursor.fetchone()[0])


def limits_waits_record(*, limit: int = 100) -> int:
    """One ``concurrency_wait`` event per queued stay of each runnable execution that a full
    limit holds back (run by each cluster's tick; one cluster at a time). Returns how many."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, 0)", [LOCK_CLASS])
        if not cursor.fetchone()[0]:
            return 0  # another cluster is recording right now
        cursor.execute(WAITING_SQL, {"limit": limit})
        rows = cursor.fetchall()
        executions = Execution.objects.in_bulk([row[0] for row in rows])
        for pk, environment, max_running, running in rows:
            scope = f"environment {environment}" if environment else "all environments"
            event_record(
                execution=executions[pk],
                event_type="concurrency_wait",
                actor_type=ActorType.WORKER,
                details={
                    "reason": f"concurrency limit reached ({scope}: {running} of {max_running} running)",
                    "environment": environment,
                    "max_running": max_running,
                    "running": running,
                },
            )
    return len(rows)


USAGE_SQL = f"""
SELECT t.slug, l.environment, l.max_running, {_USED},
       (SELECT count(*) FROM execution_queue wq JOIN executions we ON we.execution_id = wq.execution_id
        WHERE wq.status = 'pending' AND (wq.available_at IS NULL OR wq.available_at <= now())
          AND we.tenant_id = l.tenant_id AND (l.environment = '' OR we.environment = l.environment))
FROM concurrency_limits l JOIN tenants t ON t.id = l.tenant_id
WHERE %(all)s OR l.tenant_id = ANY(%(tenants)s)
ORDER BY t.slug, l.environment
"""  # noqa: S608 - constant fragments only


def limits_usage(*, tenant_ids: list[int] | None) -> list[dict[str, Any]]:
    """Each limit of these tenants (None: all) with its claimed and runnable-waiting counts."""
    with connection.cursor() as cursor:
        cursor.execute(USAGE_SQL, {"all": tenant_ids is None, "tenants": list(tenant_ids or [])})
        return [
            {
                "tenant": slug,
                "environment": env or "all",
                "max_running": limit,
                "running": used,
                "waiting": waiting,
            }
            for slug, env, limit, used, waiting in cursor.fetchall()
        ]
