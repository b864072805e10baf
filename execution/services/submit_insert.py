"""The write of a submission: the execution, its steps, its events and (level 0) its queue
item in ONE statement (data-modifying CTEs), with the events' pointer and the clusters'
wake-up as NOTIFYs of the same statement.

Outside a transaction the statement is its own transaction (nothing half-written is ever
visible, and the BEGIN/COMMIT round trips are saved); inside one it takes part in it. The
unique (tenant, idempotency_key) index is still the race guard: a concurrent identical
submission fails here with IntegrityError and the caller replays the winner.

The column lists are written out (Django's ORM spent more time compiling four INSERTs than
PostgreSQL spent running them: docs/engine.md#submission-cost); ``tests/execution/
test_submit_insert.py`` checks that they name every column of the four models.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.utils import timezone

from execution.enums import ExecutionStatus, QueueStatus
from execution.models import Execution, ExecutionEvent, ExecutionStep, StoredPolicy
from execution.services.events import EVENTS_CTE, EVENTS_POINTER_SQL, events_committed, events_cte_params
from execution.worker.wake import WAKE_CHANNEL

_EXECUTION = """e AS (
    INSERT INTO executions (execution_id, tenant_id, actor_id, submitted_by_id, idempotency_key,
        released_idempotency_key,
        plan_snapshot, execution_mode, sla_class, approval_level, status, previous_status, status_changed_at,
        created_at, started_at, completed_at, timeout_at, result, error_message, error_details, trace_id,
        trace_parent, parent_execution_id, tags, metadata, updated_at, environment, action_class, priority,
        dry_run, plan_hash, timeout_policy, cancel_requested_at, cancel_requested_by_id, runbook)
    VALUES (%(execution_id)s, %(tenant_id)s, %(actor_id)s, %(submitted_by_id)s, %(idempotency_key)s, NULL,
        %(plan_snapshot)s, %(execution_mode)s, %(sla_class)s, %(approval_level)s, %(status)s,
        %(previous_status)s, %(now)s,
        %(now)s, NULL, NULL, NULL, NULL, '', NULL, %(trace_id)s,
        %(trace_parent)s, %(parent_execution_id)s, %(tags)s, %(metadata)s, %(now)s, %(environment)s,
        %(action_class)s, %(priority)s,
        %(dry_run)s, %(plan_hash)s, %(timeout_policy)s, NULL, NULL, %(runbook)s)
    RETURNING id)"""

_STEPS = """s AS (
    INSERT INTO execution_steps (step_id, execution_id, step_index, step_name, step_type, target_asset_id,
        target_hostname, status, started_at, completed_at, duration_ms, input_data, output_data, artifacts,
        error_message, error_details, retry_count, max_retries, trace_id, logs, created_at, updated_at,
        action_class, exit_code)
    SELECT st.step_id, %(execution_id)s, st.step_index, st.step_name, st.step_type, st.asset_id, st.hostname,
        %(status)s, NULL, NULL, NULL, st.input_data, NULL, NULL, '', NULL, 0, st.max_retries,
        %(trace_id)s, '', %(now)s, %(now)s, st.action_class, NULL
    FROM UNNEST(%(st_step_id)s::uuid[], %(st_index)s::integer[], %(st_name)s::varchar[],
                %(st_type)s::varchar[], %(st_asset_id)s::varchar[], %(st_hostname)s::varchar[],
                %(st_input)s::jsonb[], %(st_max_retries)s::integer[], %(st_action_class)s::varchar[])
         AS st(step_id, step_index, step_name, step_type, asset_id, hostname, input_data, max_retries,
               action_class)
    RETURNING id, step_id)"""

# Only a level-0 execution is queued at once; the WHERE keeps the statement one shape.
_QUEUE = """q AS (
    INSERT INTO execution_queue (queue_id, execution_id, priority, sla_class, lease_token, lease_expires_at,
        visibility_timeout_seconds, attempt_count, max_attempts, last_error, enqueued_at, dequeued_at,
        completed_at, status, created_at, updated_at, available_at, attempt_started_at, worker_id, tenant_id,
        environment)
    SELECT %(queue_id)s, %(execution_id)s, %(queue_priority)s, %(sla_class)s, NULL, NULL,
        %(lease_timeout)s, 0, %(max_attempts)s, '', %(now)s, NULL,
        NULL, %(queue_status)s, %(now)s, %(now)s, %(now)s, NULL, '', %(tenant_id)s,
        %(environment)s
    WHERE %(queued)s
    RETURNING id)"""

INSERT_SQL = f"""WITH {_EXECUTION}, {_STEPS}, {EVENTS_CTE}, {_QUEUE}
SELECT (SELECT id FROM e), (SELECT array_agg(ARRAY[id::text, step_id::text]) FROM s),
       (SELECT array_agg(ARRAY[id::text, event_id::text]) FROM ev),
       {EVENTS_POINTER_SQL},
       CASE WHEN %(queued)s THEN pg_notify('{WAKE_CHANNEL}', '') END"""  # noqa: S608 - constant fragments only


@dataclass
class StepRow:
    """One step of the plan as submitted, resolved and classified."""

    name: str
    type: str
    asset_id: str
    hostname: str
    action_class: str
    max_retries: int
    input_data: dict[str, Any]


def execution_insert(
    *,
    execution: Execution,
    steps: list[StepRow],
    events: list[dict[str, Any]],
    policy: StoredPolicy,
    queue_priority: int | None,
) -> list[ExecutionStep]:
    """Write ``execution`` (an unsaved instance with every field the submission sets), its
    steps, its ``events`` (:func:`~execution.services.events.event_record`'s keyword
    arguments) and, when it is ``queued``, its queue item, in one statement. The instance
    gets its primary key and timestamps; the step rows are returned (the answer needs no
    query). The events reach the publishers after commit; a queued execution wakes the
    clusters at commit."""
    now = timezone.now()
    queued = execution.status == ExecutionStatus.QUEUED
    execution.created_at = execution.status_changed_at = execution.updated_at = now
    step_rows = [
        ExecutionStep(
            execution=execution,
            step_index=index,
            step_name=step.name,
            step_type=step.type,
            status=execution.status,
            target_asset_id=step.asset_id,
            target_hostname=step.hostname,
            action_class=step.action_class,
            max_retries=step.max_retries,
            input_data=step.input_data,
            trace_id=execution.trace_id,
            created_at=now,
            updated_at=now,
        )
        for index, step in enumerate(steps)
    ]
    from execution.services.events import events_rows

    event_rows = events_rows(execution=execution, events=events)
    params: dict[str, Any] = {
        "execution_id": execution.execution_id,
        "tenant_id": execution.tenant_id,
        "actor_id": execution.actor_id,
        "submitted_by_id": execution.submitted_by_id,
        "idempotency_key": execution.idempotency_key,
        "plan_snapshot": json.dumps(execution.plan_snapshot),
        "execution_mode": execution.execution_mode,
        "sla_class": execution.sla_class,
        "approval_level": execution.approval_level,
        "status": execution.status,
        "previous_status": execution.previous_status,
        "now": now,
        "trace_id": execution.trace_id,
        "trace_parent": execution.trace_parent,
        "parent_execution_id": execution.parent_execution_id,
        "tags": json.dumps(execution.tags),
        "metadata": json.dumps(execution.metadata),
        "environment": execution.environment,
        "action_class": execution.action_class,
        "priority": execution.priority,
        "dry_run": execution.dry_run,
        "plan_hash": execution.plan_hash,
        "timeout_policy": json.dumps(execution.timeout_policy),
        "runbook": None if execution.runbook is None else json.dumps(execution.runbook),
        "st_step_id": [s.step_id for s in step_rows],
        "st_index": [s.step_index for s in step_rows],
        "st_name": [s.step_name for s in step_rows],
        "st_type": [s.step_type for s in step_rows],
        "st_asset_id": [s.target_asset_id for s in step_rows],
        "st_hostname": [s.target_hostname for s in step_rows],
        "st_input": [json.dumps(s.input_data) for s in step_rows],
        "st_max_retries": [s.max_retries for s in step_rows],
        "st_action_class": [s.action_class for s in step_rows],
        "queued": queued,
        "queue_id": uuid.uuid4(),
        "queue_priority": queue_priority or execution.priority,
        "queue_status": QueueStatus.PENDING,
        "lease_timeout": policy.lease_timeout_seconds,
        "max_attempts": policy.max_attempts,
        **events_cte_params(event_rows, created_at=now),
    }
    with connection.cursor() as cursor:
        cursor.execute(INSERT_SQL, params)
        pk, step_ids, event_ids = cursor.fetchone()[:3]
    _saved(execution, pk)
    by_step = {uuid.UUID(step_id): int(id_) for id_, step_id in step_ids}
    for row in step_rows:
        _saved(row, by_step[row.step_id])
    events_committed(event_rows, {uuid.UUID(event_id): int(id_) for id_, event_id in event_ids})
    return step_rows


def _saved(row: Execution | ExecutionStep | ExecutionEvent, pk: int) -> None:
    row.pk = pk
    row._state.adding = False
    row._state.db = connection.alias
