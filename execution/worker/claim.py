"""Claiming work: the claim that returns an attempt's whole context, giving an item back,
and the wake-ups (docs/engine.md, docs/contract.md#queue-and-workers).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from execution.services.limits import FULL_SCOPES_CTE, LIMITED_SQL, limits_claim_over
from execution.worker.sql import Prepared
from execution.worker.wake import WAKE_CHANNEL


@dataclass(frozen=True)
class StepRow:
    step_index: int
    step_name: str
    step_type: str
    target_asset_id: str
    target_hostname: str
    status: str
    retry_count: int
    max_retries: int
    action_class: str
    output_data: dict[str, Any] | None
    exit_code: int | None
    duration_ms: int | None


@dataclass
class AttemptContext:
    """Everything one attempt needs, read by the claim (or :func:`context_for`) in one trip."""

    item_id: int | None
    lease_token: uuid.UUID | None
    attempt: int
    max_attempts: int
    priority: int  # the queue item's (immediate plans: 1); the place in a lock's line
    pk: int
    execution_id: uuid.UUID
    status: str
    tenant_id: int
    tenant_slug: str
    actor_id: int
    actor_active: bool
    actor_username: str
    role: str | None  # the actor's membership role in the tenant, None without one
    environment: str
    action_class: str
    sla_class: str
    dry_run: bool
    trace_id: str
    plan_snapshot: dict[str, Any]
    plan_hash: str
    approval_plan_hash: str | None
    # The end of the run window the approval was given for (docs/approvals.md#run-windows).
    approval_run_before: datetime | None
    cancel_requested: bool
    approval_level: int
    step_timeout_seconds: int
    execution_timeout_seconds: int
    steps: list[StepRow] = field(default_factory=list)
    timeout_at: datetime | None = None


# The columns of the attempt context, from ``executions e`` and its neighbours. The timeout
# policy is the one stored on the execution at submission (rows written before policies
# were stored fall back to the current policy of their SLA x action class).
_CONTEXT_COLUMNS = """
    e.id, e.execution_id, e.status, e.tenant_id, t.slug, e.actor_id, u.is_active, u.username, m.role,
    e.environment, e.action_class, e.sla_class, e.dry_run, e.trace_id, e.plan_snapshot,
    e.plan_hash, a.plan_hash, a.run_before, e.cancel_requested_at IS NOT NULL, e.approval_level,
    coalesce((e.timeout_policy->>'step_timeout_seconds')::int, p.step_timeout_seconds),
    coalesce((e.timeout_policy->>'execution_timeout_seconds')::int, p.execution_timeout_seconds),
    (SELECT coalesce(json_agg(json_build_object(
                'i', s.step_index, 'n', s.step_name, 't', s.step_type, 'a', s.target_asset_id,
                'h', s.target_hostname, 's', s.status, 'r', s.retry_count, 'm', s.max_retries,
                'c', s.action_class, 'o', CASE WHEN s.status = 'completed' THEN s.output_data END,
                'x', s.exit_code, 'd', s.duration_ms)
            ORDER BY s.step_index), '[]')
     FROM execution_steps s WHERE s.execution_id = e.execution_id)
"""
_CONTEXT_JOINS = """
    JOIN tenants t ON t.id = e.tenant_id
    JOIN auth_user u ON u.id = e.actor_id
    LEFT JOIN tenant_memberships m ON m.tenant_id = e.tenant_id AND m.user_id = e.actor_id
    LEFT JOIN approvals a ON a.execution_id = e.execution_id
    LEFT JOIN timeout_policies p ON p.sla_class = e.sla_class AND p.action_class = e.action_class
"""

# The fair claim (docs/engine.md "The fair claim", docs/contract.md#engine-v3): tenants with
# runnable work take turns, priority then age inside a tenant. One statement:
#   pairs       the (tenant, environment) pairs with runnable-looking work: a loose index scan
#               of queue_claim_fair (one probe per pair, however deep each backlog is);
#   candidates  the first CLAIM_CANDIDATES items of each pair whose scope is not at a
#               concurrency limit (a full tenant is skipped in one step, its backlog never
#               read), each with its turn: the tenant's running items plus its place among
#               the tenant's candidates (round robin), then priority, then age;
#   next        the best candidate nobody else is claiming (FOR UPDATE SKIP LOCKED): a
#               worker that loses a race takes the next candidate, not nothing.
# The claim then returns the attempt's whole context, and whether a limit applies at all.
CLAIM_CANDIDATES = 4
# Not parked in a lock's line (the predicate of queue_claim_fair, which the claim's scans use).
CLAIMABLE_SQL = "(q.available_at IS NULL OR q.available_at < 'infinity')"
CLAIM_SQL = f"""
WITH RECURSIVE {FULL_SCOPES_CTE},
running AS MATERIALIZED (
    SELECT r.tenant_id, count(*) AS n FROM execution_queue r
    WHERE r.status = 'processing' GROUP BY r.tenant_id
),
pairs AS (
    (SELECT q.tenant_id, q.environment FROM execution_queue q
     WHERE q.status = 'pending' AND {CLAIMABLE_SQL}
     ORDER BY q.tenant_id, q.environment LIMIT 1)
    UNION ALL
    SELECT n.tenant_id, n.environment FROM pairs p CROSS JOIN LATERAL (
        SELECT q.tenant_id, q.environment FROM execution_queue q
        WHERE q.status = 'pending' AND {CLAIMABLE_SQL}
          AND (q.tenant_id, q.environment) > (p.tenant_id, p.environment)
        ORDER BY q.tenant_id, q.environment LIMIT 1) n
),
candidates AS (
    SELECT c.id, p.tenant_id, c.priority, c.enqueued_at,
           coalesce(r.n, 0) + row_number() OVER (
               PARTITION BY p.tenant_id ORDER BY c.priority, c.enqueued_at, c.id) AS turn
    FROM pairs p
    LEFT JOIN running r ON r.tenant_id = p.tenant_id
    CROSS JOIN LATERAL (
        SELECT q.id, q.priority, q.enqueued_at FROM execution_queue q
        WHERE q.status = 'pending' AND {CLAIMABLE_SQL}
          AND q.tenant_id = p.tenant_id AND q.environment = p.environment
          AND (q.available_at IS NULL OR q.available_at <= now())
        ORDER BY q.priority, q.enqueued_at, q.id
        LIMIT {CLAIM_CANDIDATES}) c
    WHERE NOT EXISTS (SELECT 1 FROM full_scopes f
                      WHERE f.tenant_id = p.tenant_id AND f.environment IN ('', p.environment))
),
next AS (
    SELECT l.id FROM (SELECT c.id, c.turn, c.priority, c.enqueued_at FROM candidates c
                      ORDER BY c.turn, c.priority, c.enqueued_at, c.id) c
    CROSS JOIN LATERAL (SELECT q.id FROM execution_queue q WHERE q.id = c.id AND q.status = 'pending'
                        FOR UPDATE SKIP LOCKED) l
    LIMIT 1
), claimed AS (
    UPDATE execution_queue q
    SET status = 'processing', lease_token = %(token)s,
        lease_expires_at = now() + make_interval(secs => LEAST(%(lease)s, q.visibility_timeout_seconds)),
        attempt_count = q.attempt_count + 1, dequeued_at = now(), attempt_started_at = now(),
        worker_id = %(worker)s, updated_at = now()
    FROM next WHERE q.id = next.id
    RETURNING q.id, q.execution_id, q.attempt_count, q.max_attempts, q.priority
)
SELECT c.id, c.attempt_count, c.max_attempts, c.priority, {_CONTEXT_COLUMNS}, {LIMITED_SQL}
FROM claimed c JOIN executions e ON e.execution_id = c.execution_id {_CONTEXT_JOINS}
"""  # noqa: S608 - composed of constant fragments; every value is a parameter
CLAIM = Prepared("ops_claim", CLAIM_SQL)

CONTEXT_SQL = f"""
SELECT NULL, 1, 1, e.priority, {_CONTEXT_COLUMNS}, false
FROM executions e {_CONTEXT_JOINS}
WHERE e.id = %(pk)s
"""  # noqa: S608 - composed of constant fragments; every value is a parameter


def _step(s: dict[str, Any]) -> StepRow:
    keys = ("i", "n", "t", "a", "h", "s", "r", "m", "c", "o", "x", "d")
    return StepRow(*(s[k] for k in keys))


def _context(row: tuple[Any, ...], token: uuid.UUID | None) -> AttemptContext:
    (item_id, attempt, max_attempts, priority, pk, execution_id, status, tenant_id, slug, actor_id, active,
     username, role, environment, action_class, sla_class, dry_run, trace_id, plan, plan_hash,
     approval_plan_hash, run_before, cancel_requested, approval_level, step_timeout, execution_timeout,
     steps, _limited) = row  # fmt: skip
    return AttemptContext(
        item_id=item_id,
        lease_token=token if item_id is not None else None,
        attempt=attempt,
        max_attempts=max_attempts,
        priority=priority,
        pk=pk,
        execution_id=execution_id if isinstance(execution_id, uuid.UUID) else uuid.UUID(str(execution_id)),
        status=status,
        tenant_id=tenant_id,
        tenant_slug=slug,
        actor_id=actor_id,
        actor_active=active,
        actor_username=username,
        role=role,
        environment=environment,
        action_class=action_class,
        sla_class=sla_class,
        dry_run=dry_run,
        trace_id=trace_id,
        plan_snapshot=plan if isinstance(plan, dict) else json.loads(plan),
        plan_hash=plan_hash,
        approval_plan_hash=approval_plan_hash,
        approval_run_before=run_before,
        cancel_requested=cancel_requested,
        approval_level=approval_level,
        step_timeout_seconds=step_timeout,
        execution_timeout_seconds=execution_timeout,
        steps=[_step(s) for s in (json.loads(steps) if isinstance(steps, str) else steps)],
    )


def claim_with_context(*, worker_id: str) -> AttemptContext | None:
    """Lease the next runnable item within the concurrency limits and read everything its
    attempt needs; None when idle. One statement, plus three for a tenant with a limit."""
    for _ in range(CLAIM_TRIES):
        token = uuid.uuid4()
        row = CLAIM.fetchone({"token": str(token), "lease": settings.LEASE_SECONDS, "worker": worker_id})
        if row is None:
            return None
        ctx = _context(row, token)
        if not row[-1] or not _over_limit(ctx):
            return ctx
    return None


def _over_limit(ctx: AttemptContext) -> bool:
    """The claim took an item of a limited tenant: under the tenant's advisory lock, count
    again (a fresh snapshot sees every committed claim); over the limit, give the item back
    in the same transaction, so of two workers racing for the last slot exactly one keeps it."""
    with transaction.atomic(), connection.cursor() as cur:
        if limits_claim_over(cursor=cur, tenant_id=ctx.tenant_id, environment=ctx.environment):
            hand_back(ctx=ctx, status="pending", error="concurrency limit reached", give_back=True)
            return True
    return False


def context_for(*, pk: int) -> AttemptContext:
    """The attempt context of an execution run without a queue item (immediate mode)."""
    with connection.cursor() as cur:
        cur.execute(CONTEXT_SQL, {"pk": pk})
        row = cur.fetchone()
    return _context(row, None)


# A claim that lost the race for a tenant's last slot gave its item back; it tries again.
CLAIM_TRIES = 3


# Give a claimed item back without running it (the execution is no longer queued, or it
# waits for a busy asset): the attempt does not count when it never started. Only under a
# live lease, as every write of the attempt (execution/worker/sql.py LEASE): a start refused
# because the lease expired must not close the item of an execution that never ran; the
# reaper returns it to the queue.
HAND_BACK_SQL = """
UPDATE execution_queue
SET status = %(status)s, lease_token = NULL, lease_expires_at = NULL, attempt_started_at = NULL,
    worker_id = CASE WHEN %(status)s = 'pending' THEN '' ELSE worker_id END,
    last_error = left(%(error)s, 2000), updated_at = now(),
    completed_at = CASE WHEN %(status)s = 'pending' THEN NULL ELSE now() END,
    available_at = CASE WHEN %(status)s = 'pending'
                        THEN now() + make_interval(secs => %(delay)s) ELSE available_at END,
    attempt_count = CASE WHEN %(give_back)s THEN greatest(attempt_count - 1, 0) ELSE attempt_count END
WHERE id = %(item)s AND lease_token = %(token)s AND status = 'processing' AND lease_expires_at > now()
"""


def hand_back(
    *, ctx: AttemptContext, status: str, error: str, delay_seconds: float = 0.0, give_back: bool
) -> bool:
    """Close (``completed``/``failed``) or return (``pending`` after a delay) the item."""
    if ctx.item_id is None:
        return False
    with connection.cursor() as cur:
        cur.execute(
            HAND_BACK_SQL,
            {
                "status": status,
                "error": error,
                "delay": delay_seconds,
                "give_back": give_back,
                "item": ctx.item_id,
                "token": str(ctx.lease_token),
            },
        )
        return bool(cur.rowcount == 1)


# --- wake-ups -----------------------------------------------------------------------------

# Runnable items (the partial index queue_claim_pending), counted up to a limit.
RUNNABLE_SQL = """
SELECT count(*) FROM (
    SELECT 1 FROM execution_queue
    WHERE status = 'pending' AND (available_at IS NULL OR available_at <= now())
    LIMIT %s
) runnable
"""


def runnable_count(*, limit: int) -> int:
    with connection.cursor() as cur:
        cur.execute(RUNNABLE_SQL, [limit])
        row = cur.fetchone()
    return int(row[0]) if row else 0


# A draining worker's fan-out: wake the clusters only when another item is runnable.
WAKE_IF_RUNNABLE_SQL = f"""
SELECT pg_notify('{WAKE_CHANNEL}', '') FROM execution_queue
WHERE status = 'pending' AND (available_at IS NULL OR available_at <= now())
LIMIT 1
"""  # noqa: S608 - a constant channel name


def wake_if_runnable() -> None:
    with connection.cursor() as cur:
        cur.execute(WAKE_IF_RUNNABLE_SQL)
