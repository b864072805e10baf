"""The attempt's statements: start, inline run, step boundary, finish (docs/engine.md).

Each is one round trip and a compare-and-swap guarded by the lease (execution/worker/sql.py);
the claim that precedes them is in execution/worker/claim.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from execution.enums import ExecutionStatus as S
from execution.enums import LockMode
from execution.state_machine import status_set_sql
from execution.worker import lock_sql
from execution.worker.claim import AttemptContext
from execution.worker.locks import (
    LockBusy,
    LockRequest,
    locks_wake,
    take_params,
    take_verdict,
    take_with_rows,
)
from execution.worker.sql import (
    EDGES,
    EVENTS,
    EVENTS_OUT,
    LEASE,
    LEASE_OK,
    STEP_DONE,
    Prepared,
    events_published,
    statement_params,
)


def _attempt_params(ctx: AttemptContext, events: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """The parameters every attempt statement takes (the lease: item and token; the row)."""
    return statement_params(
        ctx.execution_id,
        events,
        item=ctx.item_id,
        token=str(ctx.lease_token) if ctx.lease_token else None,
        pk=ctx.pk,
        **extra,
    )


# --- start --------------------------------------------------------------------------------

# queued (or approved, immediate) -> running, unless a cancel came first; the first step to
# run goes running in the same statement.
START_SQL = f"""
WITH {LEASE},
x AS (
    UPDATE executions e
    SET {status_set_sql("'running'")},
        timeout_at = now() + make_interval(secs => %(execution_timeout)s)
    WHERE e.id = %(pk)s AND e.status = %(expected)s::execution_status
      AND e.cancel_requested_at IS NULL AND {LEASE_OK}
    RETURNING e.execution_id, e.tenant_id, e.trace_id, e.timeout_at
),
first AS (
    UPDATE execution_steps s
    SET status = 'running', started_at = now(), completed_at = NULL, error_message = '',
        retry_count = %(retry_count)s, updated_at = now()
    FROM x WHERE s.execution_id = x.execution_id AND s.step_index = %(step)s
    RETURNING s.step_index
),
{EVENTS.format(anchor="x", when="true")}
SELECT x.timeout_at, {EVENTS_OUT} FROM x
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
    params = _attempt_params(
        ctx,
        events,
        expected=expected,
        execution_timeout=ctx.execution_timeout_seconds,
        step=first_step,
        retry_count=retry_count,
    )
    row = START.fetchone(params)
    if row is None:
        return None
    events_published(row[2])
    timeout_at: datetime = row[0]
    return timeout_at


# --- inline run ---------------------------------------------------------------------------

# The steps an inline plan recorded and its queue item closed: the same in both inline
# statements (with and without asset locks).
INLINE_DONE_AND_ITEM = """done AS (
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
"""

# Steps that touch nothing outside the worker (``Runner.inline``: noop) ran before this
# statement; it records the whole attempt: queued (or approved) -> running -> completed as
# the two edges of EDGES (previous_status running, both events), the steps with their
# results, the queue item closed. Unless a cancel came first or the lease is gone: then
# nothing is written and the caller takes the not-started path.
INLINE_SQL = f"""
WITH {LEASE},
x AS (
    UPDATE executions e
    SET {status_set_sql("'completed'", previous="'running'", via_running=True)},
        timeout_at = now() + make_interval(secs => %(execution_timeout)s)
    WHERE e.id = %(pk)s AND e.status = %(expected)s::execution_status
      AND e.cancel_requested_at IS NULL AND {LEASE_OK}
    RETURNING e.execution_id, e.tenant_id, e.trace_id
),
{INLINE_DONE_AND_ITEM}{EVENTS.format(anchor="x", when="true")}
SELECT (SELECT count(*) FROM done), {EVENTS_OUT} FROM x
"""  # noqa: S608 - composed of constant fragments; every value is a parameter
INLINE = Prepared("ops_inline", INLINE_SQL)


def run_inline(
    *,
    ctx: AttemptContext,
    expected: str,
    done: list[dict[str, Any]],
    events: list[dict[str, Any]],
) -> bool:
    """Record an attempt whose steps all ran inline; False when the CAS lost (nothing written)."""
    assert (expected, S.RUNNING) in EDGES and (S.RUNNING, S.COMPLETED) in EDGES
    params = _attempt_params(
        ctx,
        events,
        expected=expected,
        execution_timeout=ctx.execution_timeout_seconds,
        done=json.dumps(done, default=str),
    )
    row = INLINE.fetchone(params)
    if row is None:
        return False
    events_published(row[2])
    return True


# --- inline run with asset locks -----------------------------------------------------------

# The inline run of a plan that locks assets (its steps all inline: noop) in one statement:
# the locks are judged under their rows' locks as a take judges them (lock_sql.TAKE_JUDGE);
# when they may be taken, the whole attempt is recorded as INLINE_SQL records it, with
# ``lock_acquired`` and ``lock_released`` among its events, and the lock rows are left as they
# were: the steps ran before this statement and touched nothing, so the hold begins and ends
# inside it (the rows stay locked until its commit, so no conflicting holder can come between).
# The execution leaves any line it stood in and those lines wake (the readers behind a writer
# that was waiting, say), with ``ops_lock`` notified as a release does. When the locks are busy
# the statement parks the attempt exactly as a take does (lock_sql.TAKE_PARK, ``lock_wait``)
# and records nothing else. A waiter that judged from a snapshot older than this commit may
# park behind the line place this statement gave up: the ``ops_lock`` notification (the
# clusters wake the line again) and the sweep wake it.
_INLINE_LOCKED = f"""
WITH {{judge}},
{{park_ctes}},
x AS (
    UPDATE executions e
    SET {status_set_sql("'completed'", previous="'running'", via_running=True)},
        timeout_at = now() + make_interval(secs => %(execution_timeout)s)
    FROM ok
    WHERE ok.ok AND e.id = %(pk)s AND e.status = %(expected)s::execution_status
      AND e.cancel_requested_at IS NULL AND {LEASE_OK}
    RETURNING e.execution_id, e.tenant_id, e.trace_id
),
{INLINE_DONE_AND_ITEM}unwait AS (
    DELETE FROM execution_lock_waiters w USING x
    WHERE w.execution_id = %(execution)s::uuid
    RETURNING w.tenant_id, w.asset_id
),
left_lines AS (
    SELECT DISTINCT u.tenant_id, u.asset_id, coalesce({lock_sql.HELD}, false) AS held,
           coalesce(l.mode, 'exclusive') AS mode
    FROM unwait u LEFT JOIN execution_locks l ON l.tenant_id = u.tenant_id AND l.asset_id = u.asset_id
),
{lock_sql.wake_ctes("left_lines", leaving="%(execution)s::uuid")},
left_note AS (
    SELECT pg_notify('{lock_sql.LOCK_CHANNEL}',
                     json_build_object('tenant_id', tenant_id, 'asset_id', asset_id)::text)
    FROM left_lines
),
ev AS (
    INSERT INTO execution_events (event_id, execution_id, tenant_id, event_type, from_status,
                                  to_status, actor_id, actor_type, details, error_message,
                                  created_at, trace_id, step_index)
    SELECT gen_random_uuid(), a.execution_id, a.tenant_id, a.e->>'type',
           (a.e->>'from')::execution_status, (a.e->>'to')::execution_status, NULL, 'worker',
           coalesce(a.e->'details', '{{}}'::jsonb), coalesce(a.e->>'error', ''), clock_timestamp(),
           a.trace_id, (a.e->>'step')::int
    FROM (
        SELECT x.execution_id, x.tenant_id, x.trace_id, v.e, v.n
        FROM x CROSS JOIN jsonb_array_elements(%(events)s::jsonb) WITH ORDINALITY AS v(e, n)
        UNION ALL
        SELECT e.execution_id, e.tenant_id, e.trace_id,
               jsonb_build_object('type', 'lock_wait', 'details', {lock_sql.WAIT_DETAILS}), 1
        FROM executions e, ok WHERE {{park}} AND e.execution_id = %(execution)s::uuid
    ) a
    ORDER BY a.n
    RETURNING id, execution_id, tenant_id, event_type, from_status, to_status, details, step_index,
              error_message
),
note AS (
    SELECT pg_notify(%(channel)s, json_build_object(
        'execution_id', execution_id, 'tenant_id', tenant_id, 'event_id', max(id))::text)
    FROM ev WHERE %(notify)s GROUP BY execution_id, tenant_id
)
SELECT {lock_sql.TAKE_OUT},
       EXISTS (SELECT 1 FROM x), (SELECT count(*) FROM done),
       (SELECT count(*) FROM wake_note) + (SELECT count(*) FROM left_note), {EVENTS_OUT}
FROM ok CROSS JOIN me LEFT JOIN blocked b ON true
"""  # noqa: S608 - composed of constant fragments; every value is a parameter


def _inline_locked_sql(*, judge: str, park_ctes: str, park: str) -> str:
    return _INLINE_LOCKED.replace("{judge}", judge).replace("{park_ctes}", park_ctes).replace("{park}", park)


INLINE_LOCKED_SQL = _inline_locked_sql(
    judge=lock_sql.TAKE_JUDGE, park_ctes=lock_sql.TAKE_PARK, park="ok.park"
)
INLINE_LOCKED = Prepared("ops_inline_locked", INLINE_LOCKED_SQL)

# The inline run of a plan whose every lock is ``shared`` (steps that only read): the same
# statement judged under ``FOR SHARE`` (lock_sql.TAKE_JUDGE_SHARE), so readers of one asset
# record their attempts side by side instead of one after the other behind the row's lock,
# while a take (``FOR UPDATE``) still waits for them. It never parks (a park changes the row):
# when the locks are busy it writes nothing and the caller runs INLINE_LOCKED, which parks.
INLINE_SHARED_SQL = _inline_locked_sql(
    judge=lock_sql.TAKE_JUDGE_SHARE, park_ctes=lock_sql.NO_PARK, park="false"
)
INLINE_SHARED = Prepared("ops_inline_shared", INLINE_SHARED_SQL)


@dataclass(frozen=True)
class InlineLocked:
    recorded: bool  # the attempt is recorded, completed
    busy: LockBusy | None  # the locks were busy: parked, or not (see LockBusy)


def run_inline_locked(
    *,
    ctx: AttemptContext,
    expected: str,
    requests: list[LockRequest],
    done: list[dict[str, Any]],
    events: list[dict[str, Any]],
) -> InlineLocked:
    """Record an attempt whose steps all ran inline and that locks ``requests``, taking and
    giving the locks in the same statement (readers only: INLINE_SHARED, then INLINE_LOCKED
    when the locks were busy); or park it when they are busy. Neither
    (``recorded`` False, no ``busy``): the CAS lost (a cancel, the lease), nothing written."""
    assert (expected, S.RUNNING) in EDGES and (S.RUNNING, S.COMPLETED) in EDGES
    params = _attempt_params(
        ctx,
        events,
        expected=expected,
        execution_timeout=ctx.execution_timeout_seconds,
        done=json.dumps(done, default=str),
        **take_params(
            tenant_id=ctx.tenant_id, execution_id=ctx.execution_id, requests=requests, priority=ctx.priority
        ),
    )
    shared = all(r.mode == LockMode.SHARED for r in requests)
    row = take_with_rows(INLINE_SHARED if shared else INLINE_LOCKED, params)
    if shared and not row[0] and not row[13]:
        # Busy for a reader (a writer holds the asset or waits ahead): nothing was written;
        # the statement that parks judges again.
        row = take_with_rows(INLINE_LOCKED, params)
    events_published(row[18])
    busy = take_verdict(row)
    return InlineLocked(recorded=bool(row[14]), busy=busy)


# --- step boundary ------------------------------------------------------------------------

# Record step i and start step i+1 in one statement, unless the execution was cancelled or
# is past its timeout_at (then step i+1 is not started and the caller finishes).
BOUNDARY_SQL = f"""
WITH {LEASE},
x AS (
    SELECT e.execution_id, e.tenant_id, e.trace_id,
           e.cancel_requested_at IS NOT NULL AS cancelled, e.timeout_at <= now() AS late
    FROM executions e
    WHERE e.id = %(pk)s AND e.status = 'running' AND {LEASE_OK}
),
{STEP_DONE.format(anchor="x")},
nxt AS (
    UPDATE execution_steps s
    SET status = 'running', started_at = now(), completed_at = NULL, error_message = '',
        retry_count = %(retry_count)s, updated_at = now()
    FROM x WHERE s.execution_id = x.execution_id AND s.step_index = %(step)s
      AND NOT x.cancelled AND NOT coalesce(x.late, false)
    RETURNING s.step_index
),
{EVENTS.format(anchor="x", when="(v.e->>'when' IS NULL OR EXISTS (SELECT 1 FROM nxt))")}
SELECT x.cancelled, coalesce(x.late, false), EXISTS (SELECT 1 FROM nxt), {EVENTS_OUT} FROM x
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
    params = _attempt_params(
        ctx,
        events,
        done=json.dumps(done, default=str),
        step=next_step,
        retry_count=retry_count,
    )
    row = BOUNDARY.fetchone(params)
    if row is None:
        return Boundary(lease_lost=True)
    events_published(row[4])
    return Boundary(cancelled=row[0], late=row[1], started_next=row[2])


# --- finish -------------------------------------------------------------------------------

_FINISH_WHEN = """(v.e->>'when' IS NULL
       OR (v.e->>'when' = 'dlq' AND EXISTS (SELECT 1 FROM dlq))
       OR (v.e->>'when' = 'locks' AND EXISTS (SELECT 1 FROM released)))"""

# running -> the outcome, with the last step's result, the asset locks released (and their
# waiters woken, execution/worker/lock_sql.py), the steps
# that will not run now ``cancelled`` (docs/contract.md#cancellation), the queue item closed (or handed back
# for a
# retry) and, for a dead letter, its DLQ entry (refreshed after an earlier requeue): one
# statement.
FINISH_SQL = f"""
WITH {LEASE},
x AS (
    UPDATE executions e
    SET {status_set_sql("%(to)s")},
        error_message = coalesce(%(error)s, e.error_message)
    WHERE e.id = %(pk)s AND e.status = 'running' AND {LEASE_OK}
    RETURNING e.execution_id, e.tenant_id, e.trace_id, e.sla_class
),
{STEP_DONE.format(anchor="x")},
rest AS (
    UPDATE execution_steps s SET status = 'cancelled', updated_at = now()
    FROM x WHERE %(cancel_rest)s AND s.execution_id = x.execution_id
      AND s.status IN ('queued', 'running')
      AND s.step_index <> coalesce((%(done)s::jsonb->>'index')::int, -1)
    RETURNING s.id
),
rest_targets AS (
    -- a fleet step that will not run now leaves no target pending (docs/fleet.md)
    UPDATE execution_step_targets t SET status = 'skipped'
    FROM rest WHERE t.step_id = rest.id AND t.status IN ('pending', 'waiting')
    RETURNING t.id
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
{lock_sql.release_ctes("%(has_locks)s AND EXISTS (SELECT 1 FROM x)")},
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
{EVENTS.format(anchor="x", when=_FINISH_WHEN)}
SELECT (SELECT attempt_count FROM dlq), {EVENTS_OUT}, {lock_sql.RELEASE_OUT} FROM x
"""  # noqa: S608 - composed of constant fragments; every value is a parameter
FINISH = Prepared("ops_finish", FINISH_SQL)


def finish(
    *,
    ctx: AttemptContext,
    to: str,
    done: dict[str, Any] | None,
    error: str | None,
    cancel_rest: bool,
    queue_status: str,
    queue_error: str = "",
    delay_seconds: float = 0.0,
    dlq_reason: str | None = None,
    assets: list[str] | None = None,
    give_back: bool = False,
    events: list[dict[str, Any]],
) -> bool:
    """running -> ``to`` (CAS), releasing ``assets``; False when the lease or the running
    status was lost."""
    assert (S.RUNNING, to) in EDGES
    params = _attempt_params(
        ctx,
        events,
        to=to,
        done=json.dumps(done, default=str) if done is not None else None,
        error=error,
        cancel_rest=cancel_rest,
        queue_status=queue_status,
        queue_error=queue_error,
        delay=delay_seconds,
        dlq=dlq_reason,
        has_locks=bool(assets),
        tenant=ctx.tenant_id,
        execution=str(ctx.execution_id),
        assets=list(assets or []),
        give_back=give_back,
    )
    row = FINISH.fetchone(params)
    if row is None:
        return False
    events_published(row[2])
    if row[3]:  # a waiter parked while this statement ran: wake its line again
        locks_wake(lines=[(ctx.tenant_id, a) for a in assets or []])
    return True
