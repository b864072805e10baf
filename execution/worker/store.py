"""The worker's hot path in set-based SQL: one function per statement (docs/engine.md).

Every function here is one round trip. A status change is a compare-and-swap
(``UPDATE executions ... WHERE status = <expected> RETURNING``) guarded by the queue lease
(the lease row is read ``FOR SHARE``/``FOR UPDATE`` inside the same statement, so a reaper
that took the item first wins and our write becomes a no-op). These CAS statements are the
set-based form of ``transition()`` (execution/services/transition.py): same legal edges
(checked by :data:`EDGES` against the state machine at import), same columns
(``previous_status``, ``status_changed_at``, ``started_at``/``completed_at``), and the
events of the statement written by one multi-row ``INSERT`` in the same transaction.

With ``REDIS_URL`` unset the pointer of the statement's highest event id goes out as one
``NOTIFY`` inside the statement (delivered at commit); the other publishers (and the Redis
one) get the events after commit from :func:`_published`. Text is masked by the caller
before it reaches these functions.

With ``DB_PREPARE`` (``OPS_DB_PREPARE``, on by default) the four hot statements are
server-side prepared statements, planned once per connection (the claim's planning costs
more than its execution): the first use sends ``PREPARE`` and ``EXECUTE`` in one round trip,
later uses ``EXECUTE`` only. Turn it off behind PgBouncer in transaction mode, which hands a
client a different server session per transaction, where the statement does not exist.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from execution.enums import ExecutionStatus as S
from execution.masking import mask_data, mask_text, secrets_of
from execution.realtime.groups import PG_CHANNEL
from execution.services.events import publish_event
from execution.services.limits import AT_LIMIT_SQL, FULL_SCOPES_CTE, LIMITED_SQL, limits_claim_over
from execution.state_machine import is_legal
from execution.worker.wake import WAKE_CHANNEL

# Every status edge these statements take; each must be legal in the state machine
# (docs/contract.md#state-machine).
EDGES: frozenset[tuple[str, str]] = frozenset(
    {(S.QUEUED, S.RUNNING), (S.APPROVED, S.RUNNING)}
    | {(S.RUNNING, to) for to in (S.COMPLETED, S.PARTIAL, S.FAILED, S.CANCELLED, S.TIMEOUT, S.QUEUED)}
)
assert all(is_legal(a, b) for a, b in EDGES), "store edge not in the state machine"


# The SQL type of every parameter, for PREPARE (one type per name across the statements).
PARAM_TYPES: dict[str, str] = {
    "token": "uuid",
    "lease": "float8",
    "worker": "text",
    "pk": "bigint",
    "item": "bigint",
    "expected": "text",
    "execution_timeout": "float8",
    "step": "int",
    "retry_count": "int",
    "events": "jsonb",
    "channel": "text",
    "notify": "boolean",
    "done": "jsonb",
    "result": "jsonb",
    "error": "text",
    "to": "text",
    "cancel_rest": "boolean",
    "queue_status": "text",
    "queue_error": "text",
    "delay": "float8",
    "dlq": "text",
    "has_locks": "boolean",
    "give_back": "boolean",
}
_PARAM = re.compile(r"%\((\w+)\)s")


class Prepared:
    """One statement in both forms: named parameters, and ``PREPARE``d with ``$n``."""

    def __init__(self, name: str, sql: str) -> None:
        self.name, self.sql = name, sql
        self.order: list[str] = []
        for param in _PARAM.findall(sql):
            if param not in self.order:
                self.order.append(param)
        positional = _PARAM.sub(lambda m: f"${self.order.index(m.group(1)) + 1}", sql)
        types = ", ".join(PARAM_TYPES[p] for p in self.order)
        self.prepare = f"PREPARE {name} ({types}) AS {positional}"
        self.execute = f"EXECUTE {name} ({', '.join(['%s'] * len(self.order))})"

    def fetchone(self, params: dict[str, Any]) -> tuple[Any, ...] | None:
        with connection.cursor() as cur:
            if not settings.DB_PREPARE:
                cur.execute(self.sql, params)
                return cur.fetchone()  # type: ignore[no-any-return]
            values = [params[p] for p in self.order]
            prepared = _prepared_here()
            if self.name in prepared:
                cur.execute(self.execute, values)
            else:  # PREPARE and EXECUTE in one round trip
                cur.execute(f"{self.prepare}; {self.execute}", values)
                prepared.add(self.name)
            return cur.fetchone()  # type: ignore[no-any-return]


def _prepared_here() -> set[str]:
    """The statements prepared on this thread's current server connection."""
    connection.ensure_connection()
    raw = connection.connection
    state = getattr(connection, "_ops_prepared", None)
    if state is None or state[0] is not raw:  # a new server session: nothing prepared yet
        state = (raw, set())
        connection._ops_prepared = state  # type: ignore[attr-defined]
    names: set[str] = state[1]
    return names


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
    e.plan_hash, a.plan_hash, e.cancel_requested_at IS NOT NULL, e.approval_level,
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

# Claim by priority, then age, skipping rows another worker holds (partial index
# queue_claim_pending: WHERE status = 'pending' ORDER BY priority, enqueued_at, id) and
# items whose tenant is at a concurrency limit (execution/services/limits.py), and return
# the attempt's whole context in the same statement, with whether a limit applies at all.
# The limit test is a filter on each candidate, not a join: the planner then walks the
# partial index in order and stops at the first free item. The OR keeps PostgreSQL from
# turning it into an anti-join (whose row estimate, in the prepared statement's generic
# plan, made it sort every pending item on each claim: O(queue depth)), and when no limit
# is full (the usual case) the first arm, evaluated once, is all it costs.
CLAIM_SQL = f"""
WITH {FULL_SCOPES_CTE},
next AS (
    SELECT q.id FROM execution_queue q
    WHERE q.status = 'pending' AND (q.available_at IS NULL OR q.available_at <= now())
      AND (NOT EXISTS (SELECT 1 FROM full_scopes)
           OR NOT EXISTS (SELECT 1 FROM executions e
                          WHERE e.execution_id = q.execution_id AND {AT_LIMIT_SQL}))
    ORDER BY q.priority, q.enqueued_at, q.id
    LIMIT 1
    FOR UPDATE OF q SKIP LOCKED
), claimed AS (
    UPDATE execution_queue q
    SET status = 'processing', lease_token = %(token)s,
        lease_expires_at = now() + make_interval(secs => LEAST(%(lease)s, q.visibility_timeout_seconds)),
        attempt_count = q.attempt_count + 1, dequeued_at = now(), attempt_started_at = now(),
        worker_id = %(worker)s, updated_at = now()
    FROM next WHERE q.id = next.id
    RETURNING q.id, q.execution_id, q.attempt_count, q.max_attempts
)
SELECT c.id, c.attempt_count, c.max_attempts, {_CONTEXT_COLUMNS}, {LIMITED_SQL}
FROM claimed c JOIN executions e ON e.execution_id = c.execution_id {_CONTEXT_JOINS}
"""  # noqa: S608 - composed of constant fragments; every value is a parameter
CLAIM = Prepared("ops_claim", CLAIM_SQL)

CONTEXT_SQL = f"""
SELECT NULL, 1, 1, {_CONTEXT_COLUMNS}, false
FROM executions e {_CONTEXT_JOINS}
WHERE e.id = %(pk)s
"""  # noqa: S608 - composed of constant fragments; every value is a parameter


def _step(s: dict[str, Any]) -> StepRow:
    keys = ("i", "n", "t", "a", "h", "s", "r", "m", "c", "o", "x", "d")
    return StepRow(*(s[k] for k in keys))


def _context(row: tuple[Any, ...], token: uuid.UUID | None) -> AttemptContext:
    (item_id, attempt, max_attempts, pk, execution_id, status, tenant_id, slug, actor_id, active,
     username, role, environment, action_class, sla_class, dry_run, trace_id, plan, plan_hash,
     approval_plan_hash, cancel_requested, approval_level, step_timeout, execution_timeout,
     steps, _limited) = row  # fmt: skip
    return AttemptContext(
        item_id=item_id,
        lease_token=token if item_id is not None else None,
        attempt=attempt,
        max_attempts=max_attempts,
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


# --- shared fragments ---------------------------------------------------------------------

# A claim that lost the race for a tenant's last slot gave its item back; it tries again.
CLAIM_TRIES = 3

# The lease, still ours: locked so a reaper taking the item waits for us (or we see its
# change and write nothing). Immediate runs have no item (%(item)s IS NULL).
_LEASE = """
lease AS (
    SELECT q.id FROM execution_queue q
    WHERE q.id = %(item)s AND q.lease_token = %(token)s AND q.status = 'processing'
    FOR UPDATE
)"""
_LEASE_OK = "(%(item)s::bigint IS NULL OR EXISTS (SELECT 1 FROM lease))"

# The events of the statement, one multi-row INSERT in the order given; ``when`` ties an
# event to another part of the statement having happened.
_EVENTS = """
ev AS (
    INSERT INTO execution_events (event_id, execution_id, tenant_id, event_type, from_status,
                                  to_status, actor_id, actor_type, details, error_message,
                                  created_at, trace_id, step_index)
    SELECT gen_random_uuid(), x.execution_id, x.tenant_id, v.e->>'type',
           (v.e->>'from')::execution_status, (v.e->>'to')::execution_status, NULL, 'worker',
           coalesce(v.e->'details', '{{}}'::jsonb), coalesce(v.e->>'error', ''), now(),
           x.trace_id, (v.e->>'step')::int
    FROM {anchor} x
    CROSS JOIN jsonb_array_elements(%(events)s::jsonb) WITH ORDINALITY AS v(e, n)
    WHERE {when}
    ORDER BY v.n
    RETURNING id, execution_id, tenant_id, event_type, from_status, to_status, details, step_index,
              error_message
),
note AS (
    SELECT pg_notify(%(channel)s, json_build_object(
        'execution_id', execution_id, 'tenant_id', tenant_id, 'event_id', max(id))::text)
    FROM ev WHERE %(notify)s GROUP BY execution_id, tenant_id
)"""
_EVENTS_OUT = """(SELECT count(*) FROM note),
    (SELECT json_agg(json_build_object('id', id, 'execution_id', execution_id, 'tenant_id', tenant_id,
        'event_type', event_type, 'from_status', from_status, 'to_status', to_status,
        'details', details, 'step_index', step_index, 'error_message', error_message) ORDER BY id)
     FROM ev)"""

# One step's recorded result (the step was ``running``; masked and capped by the caller).
_STEP_DONE = """
done AS (
    UPDATE execution_steps s
    SET status = (%(done)s::jsonb->>'status')::execution_status, completed_at = now(),
        duration_ms = (%(done)s::jsonb->>'duration_ms')::int,
        exit_code = (%(done)s::jsonb->>'exit_code')::int,
        output_data = %(done)s::jsonb->'output', logs = %(done)s::jsonb->>'logs',
        error_message = %(done)s::jsonb->>'error',
        artifacts = nullif(%(done)s::jsonb->'artifacts', 'null'::jsonb), updated_at = now()
    FROM {anchor} x
    WHERE %(done)s::jsonb IS NOT NULL AND s.execution_id = x.execution_id
      AND s.step_index = (%(done)s::jsonb->>'index')::int
    RETURNING s.step_index
)"""


def _params(ctx: AttemptContext, events: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    # docs/contract.md#secrets-and-masking: the store writes events and step rows, so it masks once more with
    # the values
    # resolved for the execution in this process, whatever the caller already did.
    values = secrets_of(ctx.execution_id)
    if values:
        events = mask_data(events, values)
        if extra.get("done"):
            extra["done"] = json.dumps(mask_data(json.loads(extra["done"]), values))
        if extra.get("error"):
            extra["error"] = mask_text(extra["error"], values)
        if extra.get("queue_error"):
            extra["queue_error"] = mask_text(extra["queue_error"], values)
    return {
        "events": json.dumps(events, default=str),
        "channel": PG_CHANNEL,
        # With Redis the pointer goes through the channel layer (publishers, after commit).
        "notify": not settings.REDIS_URL,
        **extra,
    }


def _published(rows: list[dict[str, Any]] | None) -> None:
    """Hand the statement's committed events to the publishers (pointer already sent)."""
    if not rows:
        return
    from execution.models import ExecutionEvent

    notified = not settings.REDIS_URL
    for row in rows:
        event = ExecutionEvent(
            id=row["id"],
            execution_id=row["execution_id"],
            tenant_id=row["tenant_id"],
            event_type=row["event_type"],
            from_status=row["from_status"],
            to_status=row["to_status"],
            details=row["details"],
            step_index=row["step_index"],
            error_message=row["error_message"],
            actor_type="worker",
        )
        transaction.on_commit(partial(publish_event, event, pointer_sent=notified))


# --- start --------------------------------------------------------------------------------

# queued (or approved, immediate) -> running, unless a cancel came first; the first step to
# run goes running in the same statement.
START_SQL = f"""
WITH {_LEASE},
x AS (
    UPDATE executions e
    SET status = 'running', previous_status = e.status, status_changed_at = now(),
        started_at = coalesce(e.started_at, now()), completed_at = NULL,
        timeout_at = now() + make_interval(secs => %(execution_timeout)s), updated_at = now()
    WHERE e.id = %(pk)s AND e.status = %(expected)s::execution_status
      AND e.cancel_requested_at IS NULL AND {_LEASE_OK}
    RETURNING e.execution_id, e.tenant_id, e.trace_id, e.timeout_at
),
first AS (
    UPDATE execution_steps s
    SET status = 'running', started_at = now(), completed_at = NULL, error_message = '',
        retry_count = %(retry_count)s, updated_at = now()
    FROM x WHERE s.execution_id = x.execution_id AND s.step_index = %(step)s
    RETURNING s.step_index
),
{_EVENTS.format(anchor="x", when="true")}
SELECT x.timeout_at, {_EVENTS_OUT} FROM x
"""  # noqa: S608 - composed of constant fragments; every value is a parameter
START = Prepared("ops_start", START_SQL)


def start(
    *,
    ctx: AttemptContext,
    expected: str,
    first_step: int | None,
    retry_count: int,
    events: list[dict[str, Any]],
) -> datetime | None:
    """``expected`` -> running and the first step running; the new ``timeout_at``, or None
    when the CAS lost (cancelled meanwhile, lease gone)."""
    params = _params(
        ctx,
        events,
        item=ctx.item_id,
        token=str(ctx.lease_token) if ctx.lease_token else None,
        pk=ctx.pk,
        expected=expected,
        execution_timeout=ctx.execution_timeout_seconds,
        step=first_step,
        retry_count=retry_count,
    )
    row = START.fetchone(params)
    if row is None:
        return None
    _published(row[2])
    timeout_at: datetime = row[0]
    return timeout_at


# --- inline run ---------------------------------------------------------------------------

# Steps that touch nothing outside the worker (``Runner.inline``: noop) ran before this
# statement; it records the whole attempt: queued (or approved) -> running -> completed as
# the two edges of EDGES (previous_status running, both events), the steps with their
# results, the queue item closed. Unless a cancel came first or the lease is gone: then
# nothing is written and the caller takes the not-started path.
INLINE_SQL = f"""
WITH {_LEASE},
x AS (
    UPDATE executions e
    SET status = 'completed', previous_status = 'running', status_changed_at = now(),
        started_at = coalesce(e.started_at, now()), completed_at = now(),
        timeout_at = now() + make_interval(secs => %(execution_timeout)s),
        result = %(result)s::jsonb, updated_at = now()
    WHERE e.id = %(pk)s AND e.status = %(expected)s::execution_status
      AND e.cancel_requested_at IS NULL AND {_LEASE_OK}
    RETURNING e.execution_id, e.tenant_id, e.trace_id
),
done AS (
    UPDATE execution_steps s
    SET status = (d->>'status')::execution_status, started_at = now(), completed_at = now(),
        duration_ms = (d->>'duration_ms')::int, exit_code = (d->>'exit_code')::int,
        output_data = d->'output', logs = d->>'logs', error_message = d->>'error',
        retry_count = (d->>'retry_count')::int, updated_at = now()
    FROM x CROSS JOIN jsonb_array_elements(%(done)s::jsonb) AS d
    WHERE s.execution_id = x.execution_id AND s.step_index = (d->>'index')::int
    RETURNING s.step_index
),
item AS (
    UPDATE execution_queue q
    SET status = 'completed', lease_token = NULL, lease_expires_at = NULL, completed_at = now(),
        attempt_started_at = NULL, last_error = '', updated_at = now()
    FROM x WHERE q.id = %(item)s
    RETURNING q.id
),
{_EVENTS.format(anchor="x", when="true")}
SELECT (SELECT count(*) FROM done), {_EVENTS_OUT} FROM x
"""  # noqa: S608 - composed of constant fragments; every value is a parameter
INLINE = Prepared("ops_inline", INLINE_SQL)


def run_inline(
    *,
    ctx: AttemptContext,
    expected: str,
    done: list[dict[str, Any]],
    result: dict[str, Any],
    events: list[dict[str, Any]],
) -> bool:
    """Record an attempt whose steps all ran inline; False when the CAS lost (nothing written)."""
    assert (expected, S.RUNNING) in EDGES and (S.RUNNING, S.COMPLETED) in EDGES
    params = _params(
        ctx,
        events,
        item=ctx.item_id,
        token=str(ctx.lease_token) if ctx.lease_token else None,
        pk=ctx.pk,
        expected=expected,
        execution_timeout=ctx.execution_timeout_seconds,
        done=json.dumps(done, default=str),
        result=json.dumps(result, default=str),
    )
    row = INLINE.fetchone(params)
    if row is None:
        return False
    _published(row[2])
    return True


# --- step boundary ------------------------------------------------------------------------

# Record step i and start step i+1 in one statement, unless the execution was cancelled or
# is past its timeout_at (then step i+1 is not started and the caller finishes).
BOUNDARY_SQL = f"""
WITH {_LEASE},
x AS (
    SELECT e.execution_id, e.tenant_id, e.trace_id,
           e.cancel_requested_at IS NOT NULL AS cancelled, e.timeout_at <= now() AS late
    FROM executions e
    WHERE e.id = %(pk)s AND e.status = 'running' AND {_LEASE_OK}
),
{_STEP_DONE.format(anchor="x")},
nxt AS (
    UPDATE execution_steps s
    SET status = 'running', started_at = now(), completed_at = NULL, error_message = '',
        retry_count = %(retry_count)s, updated_at = now()
    FROM x WHERE s.execution_id = x.execution_id AND s.step_index = %(step)s
      AND NOT x.cancelled AND NOT coalesce(x.late, false)
    RETURNING s.step_index
),
{_EVENTS.format(anchor="x", when="(v.e->>'when' IS NULL OR EXISTS (SELECT 1 FROM nxt))")}
SELECT x.cancelled, coalesce(x.late, false), EXISTS (SELECT 1 FROM nxt), {_EVENTS_OUT} FROM x
"""  # noqa: S608 - composed of constant fragments; every value is a parameter
BOUNDARY = Prepared("ops_boundary", BOUNDARY_SQL)


@dataclass(frozen=True)
class Boundary:
    lease_lost: bool = False
    cancelled: bool = False
    late: bool = False
    started_next: bool = False


def step_boundary(
    *,
    ctx: AttemptContext,
    done: dict[str, Any],
    next_step: int,
    retry_count: int,
    events: list[dict[str, Any]],
) -> Boundary:
    """Record a finished step and start ``next_step`` (events with ``when`` only if started)."""
    params = _params(
        ctx,
        events,
        item=ctx.item_id,
        token=str(ctx.lease_token) if ctx.lease_token else None,
        pk=ctx.pk,
        done=json.dumps(done, default=str),
        step=next_step,
        retry_count=retry_count,
    )
    row = BOUNDARY.fetchone(params)
    if row is None:
        return Boundary(lease_lost=True)
    _published(row[4])
    return Boundary(cancelled=row[0], late=row[1], started_next=row[2])


# --- finish -------------------------------------------------------------------------------

_FINISH_WHEN = """(v.e->>'when' IS NULL
       OR (v.e->>'when' = 'dlq' AND EXISTS (SELECT 1 FROM dlq))
       OR (v.e->>'when' = 'locks' AND EXISTS (SELECT 1 FROM released)))"""

# running -> the outcome, with the last step's result, the asset locks released, the steps
# that will not run now ``cancelled`` (docs/contract.md#cancellation), the queue item closed (or handed back
# for a
# retry) and, for a dead letter, its DLQ entry (refreshed after an earlier requeue): one
# statement.
FINISH_SQL = f"""
WITH {_LEASE},
x AS (
    UPDATE executions e
    SET status = %(to)s::execution_status, previous_status = e.status, status_changed_at = now(),
        completed_at = CASE WHEN %(to)s = 'queued' THEN NULL ELSE now() END,
        result = coalesce(%(result)s::jsonb, e.result),
        error_message = coalesce(%(error)s, e.error_message), updated_at = now()
    WHERE e.id = %(pk)s AND e.status = 'running' AND {_LEASE_OK}
    RETURNING e.execution_id, e.tenant_id, e.trace_id, e.sla_class
),
{_STEP_DONE.format(anchor="x")},
rest AS (
    UPDATE execution_steps s SET status = 'cancelled', updated_at = now()
    FROM x WHERE %(cancel_rest)s AND s.execution_id = x.execution_id
      AND s.status IN ('queued', 'running')
      AND s.step_index <> coalesce((%(done)s::jsonb->>'index')::int, -1)
    RETURNING s.id
),
item AS (
    UPDATE execution_queue q
    SET status = %(queue_status)s, lease_token = NULL, lease_expires_at = NULL,
        completed_at = CASE WHEN %(queue_status)s = 'pending' THEN NULL ELSE now() END,
        available_at = CASE WHEN %(queue_status)s = 'pending'
                            THEN now() + make_interval(secs => %(delay)s) ELSE q.available_at END,
        attempt_started_at = NULL, last_error = left(%(queue_error)s, 2000),
        worker_id = CASE WHEN %(queue_status)s = 'pending' THEN '' ELSE q.worker_id END,
        attempt_count = CASE WHEN %(give_back)s THEN greatest(q.attempt_count - 1, 0)
                             ELSE q.attempt_count END,
        updated_at = now()
    FROM x WHERE q.id = %(item)s
    RETURNING q.queue_id, q.attempt_count
),
released AS (
    UPDATE execution_locks l SET is_active = false, updated_at = now()
    FROM x WHERE %(has_locks)s AND l.execution_id = x.execution_id AND l.is_active
    RETURNING l.asset_id
),
dlq AS (
    INSERT INTO execution_dlq (dlq_id, execution_id, failure_reason, failure_details, attempt_count,
                               last_error, original_queue_id, sla_class, failed_at, requeued,
                               created_at, archived)
    SELECT gen_random_uuid(), x.execution_id, %(dlq)s, '{{}}'::jsonb, i.attempt_count,
           left(%(queue_error)s, 4000), i.queue_id, x.sla_class, now(), false, now(), false
    FROM x, item i WHERE %(dlq)s IS NOT NULL
    ON CONFLICT (execution_id) DO UPDATE
    SET failure_reason = EXCLUDED.failure_reason, failure_details = EXCLUDED.failure_details,
        attempt_count = EXCLUDED.attempt_count, last_error = EXCLUDED.last_error,
        original_queue_id = EXCLUDED.original_queue_id, sla_class = EXCLUDED.sla_class,
        failed_at = EXCLUDED.failed_at, requeued = false, requeued_at = NULL,
        requeued_by = NULL, archived = false, archived_at = NULL
    RETURNING attempt_count
),
{_EVENTS.format(anchor="x", when=_FINISH_WHEN)}
SELECT (SELECT attempt_count FROM dlq), {_EVENTS_OUT} FROM x
"""  # noqa: S608 - composed of constant fragments; every value is a parameter
FINISH = Prepared("ops_finish", FINISH_SQL)


def finish(
    *,
    ctx: AttemptContext,
    to: str,
    done: dict[str, Any] | None,
    result: dict[str, Any] | None,
    error: str | None,
    cancel_rest: bool,
    queue_status: str,
    queue_error: str = "",
    delay_seconds: float = 0.0,
    dlq_reason: str | None = None,
    has_locks: bool = False,
    give_back: bool = False,
    events: list[dict[str, Any]],
) -> bool:
    """running -> ``to`` (CAS); False when the lease or the running status was lost."""
    assert (S.RUNNING, to) in EDGES
    params = _params(
        ctx,
        events,
        item=ctx.item_id,
        token=str(ctx.lease_token) if ctx.lease_token else None,
        pk=ctx.pk,
        to=to,
        done=json.dumps(done, default=str) if done is not None else None,
        result=json.dumps(result, default=str) if result is not None else None,
        error=error,
        cancel_rest=cancel_rest,
        queue_status=queue_status,
        queue_error=queue_error,
        delay=delay_seconds,
        dlq=dlq_reason,
        has_locks=has_locks,
        give_back=give_back,
    )
    row = FINISH.fetchone(params)
    if row is None:
        return False
    _published(row[2])
    return True


# --- hand back, heartbeat -----------------------------------------------------------------

# Give a claimed item back without running it (the execution is no longer queued, or it
# waits for a busy asset): the attempt does not count when it never started.
HAND_BACK_SQL = """
UPDATE execution_queue
SET status = %(status)s, lease_token = NULL, lease_expires_at = NULL, attempt_started_at = NULL,
    worker_id = CASE WHEN %(status)s = 'pending' THEN '' ELSE worker_id END,
    last_error = left(%(error)s, 2000), updated_at = now(),
    completed_at = CASE WHEN %(status)s = 'pending' THEN NULL ELSE now() END,
    available_at = CASE WHEN %(status)s = 'pending'
                        THEN now() + make_interval(secs => %(delay)s) ELSE available_at END,
    attempt_count = CASE WHEN %(give_back)s THEN greatest(attempt_count - 1, 0) ELSE attempt_count END
WHERE id = %(item)s AND lease_token = %(token)s AND status = 'processing'
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


# Push the lease forward (never past the attempt's visibility timeout), the execution's
# asset locks with it, and this worker's heartbeat row; returns whether the lease is ours.
HEARTBEAT_SQL = """
WITH lease AS (
    UPDATE execution_queue
    SET lease_expires_at = LEAST(now() + make_interval(secs => %(ttl)s),
                                 attempt_started_at + make_interval(secs => visibility_timeout_seconds)),
        updated_at = now()
    WHERE id = %(item)s AND lease_token = %(token)s AND status = 'processing'
      AND attempt_started_at + make_interval(secs => visibility_timeout_seconds) > now()
    RETURNING id
), locks AS (
    UPDATE execution_locks
    SET expires_at = now() + make_interval(secs => %(ttl)s), last_heartbeat_at = now(), updated_at = now()
    WHERE %(has_locks)s AND execution_id = %(execution_id)s AND is_active
    RETURNING id
)
SELECT EXISTS (SELECT 1 FROM lease), (SELECT count(*) FROM locks)
"""


def lease_heartbeat(*, ctx: AttemptContext, has_locks: bool) -> bool:
    """One heartbeat of a running attempt; False when the lease is lost."""
    with connection.cursor() as cur:
        cur.execute(
            HEARTBEAT_SQL,
            {
                "ttl": settings.LEASE_SECONDS,
                "item": ctx.item_id,
                "token": str(ctx.lease_token) if ctx.lease_token else None,
                "has_locks": has_locks,
                "execution_id": str(ctx.execution_id),
            },
        )
        row = cur.fetchone()
    return ctx.item_id is None or bool(row and row[0])


# Poll of a running attempt for a cancel request (the watcher, several times a second).
CANCEL_POLL_SQL = "SELECT cancel_requested_at IS NOT NULL FROM executions WHERE id = %s"


def cancel_requested(*, pk: int) -> bool:
    with connection.cursor() as cur:
        cur.execute(CANCEL_POLL_SQL, [pk])
        row = cur.fetchone()
    return bool(row and row[0])


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


# --- the worker process's heartbeat row ---------------------------------------------------

# One row per worker process (``host:pid``): alive, and which execution it runs now.
WORKER_HEARTBEAT_SQL = """
INSERT INTO worker_heartbeats (worker_id, cluster_name, hostname, pid, started_at, last_seen_at,
                               current_execution_id, stopped_at)
VALUES (%(worker)s, %(cluster)s, %(host)s, %(pid)s, now(), now(), %(current)s,
        CASE WHEN %(stopped)s THEN now() END)
ON CONFLICT (worker_id) DO UPDATE
SET last_seen_at = now(), current_execution_id = EXCLUDED.current_execution_id,
    stopped_at = EXCLUDED.stopped_at
"""


def worker_heartbeat(*, worker: str, current: uuid.UUID | None, stopped: bool = False) -> None:
    host, _, pid = worker.rpartition(":")
    with connection.cursor() as cur:
        cur.execute(
            WORKER_HEARTBEAT_SQL,
            {
                "worker": worker,
                "cluster": str(settings.Q_CLUSTER["name"]),
                "host": host,
                "pid": int(pid) if pid.isdigit() else None,
                "current": str(current) if current else None,
                "stopped": stopped,
            },
        )
