"""What the worker's statements share: prepared statements, the CAS fragments, events.

Every statement of the hot path (execution/worker/claim.py, store.py, beats.py) is one
round trip. A status change is a compare-and-swap (``UPDATE executions ... WHERE status =
<expected> RETURNING``) guarded by the queue lease (the lease row is read ``FOR UPDATE``
inside the same statement, so a reaper that took the item first wins and our write becomes
a no-op). These CAS statements are the set-based form of ``transition()``
(execution/services/transition.py): same legal edges (:data:`EDGES`, checked against the
state machine at import), same columns (``previous_status``, ``status_changed_at``,
``started_at``/``completed_at``), and the events of the statement written by one multi-row
``INSERT`` in the same transaction.

With ``REDIS_URL`` unset the pointer of the statement's highest event id goes out as one
``NOTIFY`` inside the statement (delivered at commit); the other publishers (and the Redis
one) get the events after commit from :func:`events_published`. Text is masked by the
caller, and once more here with the execution's resolved values.

With ``DB_PREPARE`` (``OPS_DB_PREPARE``, on by default) the hot statements are server-side
prepared statements, planned once per connection (the claim's planning costs more than its
execution): the first use sends ``PREPARE`` and ``EXECUTE`` in one round trip, later uses
``EXECUTE`` only (after a failed first use, ``DEALLOCATE ALL`` leads the next one). Turn it
off behind PgBouncer in transaction mode, which hands a client a different server session
per transaction, where the statement does not exist.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from execution.enums import ExecutionStatus as S
from execution.masking import mask_data, mask_text, secrets_of
from execution.realtime.groups import PG_CHANNEL
from execution.services.events import publish_event
from execution.state_machine import is_legal

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
    "error": "text",
    "to": "text",
    "cancel_rest": "boolean",
    "queue_status": "text",
    "queue_error": "text",
    "delay": "float8",
    "dlq": "text",
    "has_locks": "boolean",
    "give_back": "boolean",
    # asset locks (execution/worker/lock_sql.py)
    "requests": "jsonb",
    "tenant": "bigint",
    "execution": "uuid",
    "owner": "text",
    "priority": "int",
    "ttl": "float8",
    "asset": "text",
    "mode": "text",
    "assets": "text[]",
    "wait_limit": "float8",
}
_PARAM = re.compile(r"%\((\w+)\)s")
SESSION_SETTINGS = "SET jit = off; SET plan_cache_mode = force_generic_plan; "


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
            session = _session_here()
            if self.name in session.names:
                cur.execute(self.execute, values)
                return cur.fetchone()  # type: ignore[no-any-return]
            # PREPARE and EXECUTE in one round trip. The first statement of a session also
            # turns JIT off for it: a JIT-compiled claim cost 60 ms instead of 0.4 (its cost
            # estimate, from a never-analysed concurrency_limits, crossed jit_above_cost at a
            # million executions). And it keeps one generic plan per statement: left to choose
            # (plan_cache_mode auto), PostgreSQL planned the inline run with asset locks anew
            # at every execution (its generic plan's estimate was the higher), 2.4-3.7 ms of
            # planning against ~2 ms of work; these statements are written for their generic
            # plans (docs/engine.md). A PREPARE outlives the failure of the EXECUTE sent with it
            # (the settings do not): after a failed first use the session's statements are
            # dropped and prepared anew, or every later use would fail with "prepared statement
            # already exists".
            lead = "" if session.names else SESSION_SETTINGS
            if session.unsure:
                lead = f"DEALLOCATE ALL; {SESSION_SETTINGS}"
                session.names.clear()
            try:
                cur.execute(f"{lead}{self.prepare}; {self.execute}", values)
            except Exception:
                session.unsure = True
                raise
            session.unsure = False
            session.names.add(self.name)
            return cur.fetchone()  # type: ignore[no-any-return]


@dataclass
class _Session:
    """What this thread's current server session holds: the statements prepared on it, and
    whether a first use failed (its PREPARE may or may not have taken effect)."""

    raw: Any
    names: set[str] = field(default_factory=set)
    unsure: bool = False


def _session_here() -> _Session:
    connection.ensure_connection()
    raw = connection.connection
    session: _Session | None = getattr(connection, "_ops_prepared", None)
    if session is None or session.raw is not raw:  # a new server session: nothing prepared yet
        session = _Session(raw=raw)
        connection._ops_prepared = session  # type: ignore[attr-defined]
    return session


# The lease, still ours: locked so a reaper taking the item waits for us (or we see its
# change and write nothing), and not expired: once it is, the attempt's asset locks have
# expired with it (the heartbeat pushes both) and another execution may hold them, so a
# worker that stalled past it (a paused VM, a stopped process) records nothing more; the
# reaper hands the execution back. Immediate runs have no item (%(item)s IS NULL).
LEASE = """
lease AS (
    SELECT q.id FROM execution_queue q
    WHERE q.id = %(item)s AND q.lease_token = %(token)s AND q.status = 'processing'
      AND q.lease_expires_at > now()
    FOR UPDATE
)"""
LEASE_OK = "(%(item)s::bigint IS NULL OR EXISTS (SELECT 1 FROM lease))"

# The events of the statement, one multi-row INSERT in the order given; ``when`` ties an
# event to another part of the statement having happened.
EVENTS = """
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
EVENTS_OUT = """(SELECT count(*) FROM note),
    (SELECT json_agg(json_build_object('id', id, 'execution_id', execution_id, 'tenant_id', tenant_id,
        'event_type', event_type, 'from_status', from_status, 'to_status', to_status,
        'details', details, 'step_index', step_index, 'error_message', error_message) ORDER BY id)
     FROM ev)"""

# One step's recorded result (the step was ``running``; masked and capped by the caller).
STEP_DONE = """
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


def statement_params(execution_id: uuid.UUID, events: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    # docs/contract.md#secrets-and-masking: the store writes events and step rows, so it masks once more with
    # the values
    # resolved for the execution in this process, whatever the caller already did.
    values = secrets_of(execution_id)
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


def events_published(rows: list[dict[str, Any]] | None) -> None:
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
