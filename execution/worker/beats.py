"""The watcher's statements: the lease heartbeat, the cancel poll, the worker's heartbeat row."""

from __future__ import annotations

import socket
import uuid

from django.conf import settings
from django.db import connection

from execution.worker.claim import AttemptContext

# Push the lease forward (never past the attempt's visibility timeout) and the asset locks
# the execution holds with it (locked in id order, as every lock statement does:
# execution/worker/lock_sql.py); returns whether the lease is ours. An expired lease is not
# renewed: its locks expired with it and may be another execution's by now (a worker that
# stalled past it trips "lease_lost" at its next beat, and the reaper hands it back).
HEARTBEAT_SQL = """
WITH lease AS (
    UPDATE execution_queue
    SET lease_expires_at = LEAST(now() + make_interval(secs => %(ttl)s),
                                 attempt_started_at + make_interval(secs => visibility_timeout_seconds)),
        updated_at = now()
    WHERE id = %(item)s AND lease_token = %(token)s AND status = 'processing' AND lease_expires_at > now()
      AND attempt_started_at + make_interval(secs => visibility_timeout_seconds) > now()
    RETURNING id
), mine AS (
    SELECT id FROM execution_locks
    WHERE %(has_locks)s AND is_active AND %(execution_id)s::uuid = ANY(holders)
    ORDER BY id
    FOR UPDATE
), locks AS (
    UPDATE execution_locks l
    SET expires_at = now() + make_interval(secs => %(ttl)s), last_heartbeat_at = now(), updated_at = now()
    FROM mine WHERE l.id = mine.id
    RETURNING l.id
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


# The cluster keeps its live worker processes' rows fresh while they are idle (a worker
# process writes its row itself only while it runs an execution): a process that died
# stops being touched and reads as lost once its heartbeat is old (execution/selectors.py).
WORKERS_TOUCH_SQL = """
UPDATE worker_heartbeats SET last_seen_at = now()
WHERE hostname = %(host)s AND pid = ANY(%(pids)s) AND stopped_at IS NULL
  AND worker_id NOT LIKE 'cluster:%%'
"""


def workers_touch(*, pids: list[int]) -> None:
    if not pids:
        return
    with connection.cursor() as cur:
        cur.execute(WORKERS_TOUCH_SQL, {"host": socket.gethostname(), "pids": pids})
