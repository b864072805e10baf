"""``retention_prune``: delete finished executions older than a cutoff, in short batches
(docs/contract.md#retention).

Each batch is one short transaction that
- waits for no lock longer than ``lock_timeout`` (a batch that would wait is skipped for now
  and the next one is tried: pruning never queues up behind a worker or the API);
- locks the executions it deletes with ``FOR UPDATE SKIP LOCKED`` after re-checking that they
  are finished, so an execution being requeued at that moment is left alone, and nothing
  unfinished is ever touched;
- copies their dead letters to ``execution_dlq_archive`` and deletes, children first, every
  row that refers to them (the tables are listed in PRUNE_SQL; a test checks the list
  against the database's foreign keys);
- runs inside ``trail_delete_allowed()`` (``SET LOCAL opsconductor.retention = 'on'``), the
  only way past the trigger that keeps ``execution_events`` append-only;
- keeps the audit chain verifiable (docs/audit.md): the sealed entries of the events it
  deletes are marked pruned by an anchor row (``audit_log``, one per tenant and batch) that
  records how many and a digest of their places in the chain; the prune seals first, so no
  event leaves unsealed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from django.db import OperationalError, connection
from django.utils import timezone

from execution.enums import FINISHED_STATUSES
from execution.models import AuditLog
from execution.services.audit_chain import audit_seal
from execution.services.audit_export import audit_anchor_pruned
from execution.services.trail import trail_delete_allowed

logger = logging.getLogger(__name__)
FINISHED = sorted(str(s) for s in FINISHED_STATUSES)
LOCK_TIMEOUT = "1s"

# Spelled out (constants, not a parameter) so the planner matches the partial index
# executions_finished_completed, whose condition lists the same statuses.
FINISHED_SQL = "status IN (" + ", ".join(f"'{s}'" for s in FINISHED) + ")"

# The executions of one batch: finished before the cutoff, oldest first, none that another
# transaction holds (index executions_finished_completed).
# (S608: FINISHED_SQL is built from the enum's constants, never from input.)
PICK_SQL = f"""
SELECT id, execution_id FROM executions
WHERE {FINISHED_SQL} AND completed_at < %(cutoff)s
ORDER BY completed_at, id
LIMIT %(batch)s
FOR UPDATE SKIP LOCKED
"""  # noqa: S608

ARCHIVE_SQL = """
INSERT INTO execution_dlq_archive (dlq_id, execution_id, tenant_id, plan_name, environment, final_status,
    failure_reason, failure_details, attempt_count, last_error, failed_at, requeued, requeued_at, archived_at)
SELECT d.dlq_id, d.execution_id, e.tenant_id, left(coalesce(e.plan_snapshot->>'name', ''), 200),
    e.environment, e.status::text, d.failure_reason, d.failure_details, d.attempt_count, d.last_error,
    d.failed_at, d.requeued, d.requeued_at, now()
FROM execution_dlq d JOIN executions e ON e.execution_id = d.execution_id
WHERE d.execution_id = ANY(%(uuids)s::uuid[])
ON CONFLICT (dlq_id) DO NOTHING
"""

# (what, statement): children before parents. Every table with a foreign key to executions.
PRUNE_SQL: list[tuple[str, str]] = [
    (
        "votes",
        "DELETE FROM approval_votes WHERE approval_id IN "
        "(SELECT id FROM approvals WHERE execution_id = ANY(%(uuids)s::uuid[]))",
    ),
    ("approvals", "DELETE FROM approvals WHERE execution_id = ANY(%(uuids)s::uuid[])"),
    # A gate's votes and the gate (approvals inside a plan, docs/approvals.md) go with it too.
    (
        "",
        "DELETE FROM gate_votes WHERE approval_id IN "
        "(SELECT id FROM gate_approvals WHERE execution_id = ANY(%(uuids)s::uuid[]))",
    ),
    ("", "DELETE FROM gate_approvals WHERE execution_id = ANY(%(uuids)s::uuid[])"),
    ("events", "DELETE FROM execution_events WHERE execution_id = ANY(%(uuids)s::uuid[])"),
    # A fleet step's target rows go with their step (docs/fleet.md).
    ("", "DELETE FROM execution_step_targets WHERE execution_id = ANY(%(uuids)s::uuid[])"),
    ("steps", "DELETE FROM execution_steps WHERE execution_id = ANY(%(uuids)s::uuid[])"),
    ("queue_items", "DELETE FROM execution_queue WHERE execution_id = ANY(%(uuids)s::uuid[])"),
    ("dead_letters_archived", "DELETE FROM execution_dlq WHERE execution_id = ANY(%(uuids)s::uuid[])"),
    # A lock row belongs to its asset and is reused; an active one of a finished execution
    # is a leak the reaper frees at expiry, so it only forgets the execution.
    ("locks", "DELETE FROM execution_locks WHERE execution_id = ANY(%(uuids)s::uuid[]) AND NOT is_active"),
    ("", "UPDATE execution_locks SET execution_id = NULL WHERE execution_id = ANY(%(uuids)s::uuid[])"),
    # A finished execution waits for nothing: a line entry left behind is stale.
    ("", "DELETE FROM execution_lock_waiters WHERE execution_id = ANY(%(uuids)s::uuid[])"),
    ("sla_alerts", "DELETE FROM sla_alerts WHERE execution_id = ANY(%(uuids)s::uuid[])"),
    ("deliveries", "DELETE FROM notification_deliveries WHERE execution_id = ANY(%(uuids)s::uuid[])"),
    ("executions", "DELETE FROM executions WHERE id = ANY(%(ids)s)"),
]
# The tables PRUNE_SQL deletes from for executions: checked against pg_constraint by a test.
CHILD_TABLES = {
    "approvals",
    "gate_approvals",
    "execution_events",
    "execution_steps",
    "execution_queue",
    "execution_dlq",
    "execution_locks",
    "execution_lock_waiters",
    "sla_alerts",
}

COUNT_SQL = {
    "executions": "SELECT count(*) FROM executions e WHERE {old}",
    "steps": "SELECT count(*) FROM execution_steps c JOIN executions e USING (execution_id) WHERE {old}",
    "events": "SELECT count(*) FROM execution_events c JOIN executions e USING (execution_id) WHERE {old}",
    "queue_items": "SELECT count(*) FROM execution_queue c JOIN executions e USING (execution_id) "
    "WHERE {old}",
    "approvals": "SELECT count(*) FROM approvals c JOIN executions e USING (execution_id) WHERE {old}",
    "votes": "SELECT count(*) FROM approval_votes v JOIN approvals c ON c.id = v.approval_id "
    "JOIN executions e USING (execution_id) WHERE {old}",
    "dead_letters_archived": "SELECT count(*) FROM execution_dlq c JOIN executions e USING (execution_id) "
    "WHERE {old}",
}
OLD = "e." + FINISHED_SQL + " AND e.completed_at < %(cutoff)s"


@dataclass
class PruneSummary:
    cutoff: datetime
    dry_run: bool
    counts: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    skipped_batches: int = 0  # a lock was held by someone else: left for the next run
    seconds: float = 0.0

    def line(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        order = sorted(self.counts, key=lambda what: what != "executions")  # executions first
        parts = ", ".join(f"{self.counts[what]} {what.replace('_', ' ')}" for what in order)
        return (
            f"prune (finished before {self.cutoff.isoformat()}): {verb} {parts} "
            f"in {self.batches} batches, {self.skipped_batches} skipped, {self.seconds:.1f}s"
        )


def _batch(*, cutoff: datetime, batch_size: int) -> dict[str, int] | None:
    """Delete one batch; returns its counts ({} when nothing is left), None when it would wait."""
    try:
        # The transaction in which the append-only trigger lets events go (SET LOCAL
        # opsconductor.retention = 'on'); lock_timeout is SET LOCAL too: both end with it.
        with trail_delete_allowed(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            cursor.execute(PICK_SQL, {"cutoff": cutoff, "batch": batch_size})
            rows = cursor.fetchall()
            if not rows:
                return {}
            params = {"ids": [r[0] for r in rows], "uuids": [str(r[1]) for r in rows]}
            cursor.execute(ARCHIVE_SQL, params)
            audit_anchor_pruned(cursor=cursor, execution_uuids=params["uuids"])
            counts: dict[str, int] = {}
            for what, statement in PRUNE_SQL:
                cursor.execute(statement, params)
                if what:
                    counts[what] = cursor.rowcount
            return counts
    except OperationalError as error:
        if "lock timeout" not in str(error):
            raise
        logger.warning("prune batch skipped: %s", error)
        return None


def retention_prune(
    *,
    older_than_days: int,
    batch_size: int,
    dry_run: bool = False,
    progress: Callable[[PruneSummary], None] | None = None,
) -> PruneSummary:
    """Delete (or with ``dry_run`` only count) finished executions whose ``completed_at`` is
    more than ``older_than_days`` ago, ``batch_size`` per transaction; record an audit row."""
    if not dry_run:
        audit_seal()  # nothing leaves unsealed (docs/audit.md); not part of the prune's time
    started = time.monotonic()
    summary = PruneSummary(cutoff=timezone.now() - timedelta(days=older_than_days), dry_run=dry_run)
    if dry_run:
        with connection.cursor() as cursor:
            for what, statement in COUNT_SQL.items():
                cursor.execute(statement.format(old=OLD), {"cutoff": summary.cutoff})
                summary.counts[what] = int(cursor.fetchone()[0])
    else:
        skipped_in_a_row = 0
        while skipped_in_a_row < 3:
            counts = _batch(cutoff=summary.cutoff, batch_size=batch_size)
            if counts is None:
                summary.skipped_batches += 1
                skipped_in_a_row += 1
                time.sleep(0.5)
                continue
            if not counts:
                break
            skipped_in_a_row = 0
            summary.batches += 1
            for what, n in counts.items():
                summary.counts[what] = summary.counts.get(what, 0) + n
            if progress is not None:
                progress(summary)
    summary.seconds = time.monotonic() - started
    AuditLog.objects.create(
        event_type="retention_prune_dry_run" if dry_run else "retention_prune",
        reason=summary.line(),
        details={**asdict(summary), "cutoff": summary.cutoff.isoformat(), "older_than_days": older_than_days},
    )
    return summary
