"""Sealing the audit trail into hash chains, one per tenant (docs/audit.md).

Rows are written as before (no trigger, no lock, nothing more on the worker's hot path);
``audit_seal()`` later appends the committed ones to their tenant's chain. Ids come from one
sequence but transactions commit in any order, so the sealer does not assume that every
row below the newest one is there: each run seals every not-yet-sealed row above a stored
low-water mark, whatever its id, and the mark only moves past rows older than
``AUDIT_SEAL_SETTLE_SECONDS`` (a row committed that long after its insert started is the one
case not covered; docs/audit.md says so). Chain order is seal order; each entry records its
row's source and id.

One sealer at a time (a transaction-level advisory lock); a second one returns at once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from psycopg2.extras import execute_values

from execution.models.audit import AuditSource

SEAL_LOCK_KEY = 0x6F70735F61756474  # "ops_audt": the sealer's advisory lock
GENESIS = "0" * 64  # the "previous hash" of a chain's first entry


@dataclass(frozen=True)
class Source:
    name: str
    table: str
    columns: tuple[str, ...]  # the sealed record's fields, in this order
    select: str  # the SQL expressions for them (same order)
    tenant: str  # SQL expression of the tenant key


SOURCES: tuple[Source, ...] = (
    Source(
        AuditSource.EVENT,
        "execution_events",
        (
            "id",
            "event_id",
            "execution_id",
            "tenant_id",
            "event_type",
            "from_status",
            "to_status",
            "actor_id",
            "actor_type",
            "details",
            "error_message",
            "created_at",
            "trace_id",
            "step_index",
        ),
        "t.id, t.event_id, t.execution_id, t.tenant_id, t.event_type, t.from_status::text, "
        "t.to_status::text, t.actor_id, t.actor_type, t.details, t.error_message, t.created_at, "
        "t.trace_id, t.step_index",
        "t.tenant_id",
    ),
    Source(
        AuditSource.AUDIT,
        "audit_log",
        ("id", "tenant_id", "actor_id", "event_type", "reason", "details", "created_at"),
        "t.id, t.tenant_id, t.actor_id, t.event_type, t.reason, t.details, t.created_at",
        "coalesce(t.tenant_id, 0)",
    ),
    Source(
        AuditSource.SECRET_ACCESS,
        "secret_access_audit",
        (
            "id",
            "tenant_id",
            "actor_id",
            "execution_id",
            "step_index",
            "path",
            "usage",
            "worker",
            "created_at",
        ),
        "t.id, t.tenant_id, t.actor_id, t.execution_id, t.step_index, t.path, t.usage, t.worker, "
        "t.created_at",
        "t.tenant_id",
    ),
)
SOURCE_BY_NAME = {s.name: s for s in SOURCES}
JSON_COLUMNS = {"details"}


def _value(column: str, value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if column in JSON_COLUMNS and isinstance(value, str):
        return json.loads(value)  # Django hands jsonb to raw cursors as its text
    if value is not None and not isinstance(value, (int, str, bool, dict, list, float)):
        return str(value)  # UUIDs
    return value


def audit_record(source: Source, row: Sequence[Any]) -> dict[str, Any]:
    """The sealed form of a row: what its hash covers and what an export prints."""
    return {column: _value(column, value) for column, value in zip(source.columns, row, strict=True)}


def record_hash(source_name: str, record: dict[str, Any]) -> str:
    canonical = json.dumps(
        {"source": source_name, "record": record}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def link_hash(previous: str, row_hash: str) -> str:
    return hashlib.sha256(f"{previous}{row_hash}".encode("ascii")).hexdigest()


def source_rows(source: Source, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Records of ``source`` rows by id (those that still exist)."""
    wanted = list(ids)
    if not wanted:
        return {}
    with connection.cursor() as cursor:
        # (S608: table and columns are constants of SOURCES, never input.)
        cursor.execute(f"SELECT {source.select} FROM {source.table} t WHERE t.id = ANY(%s)", [wanted])  # noqa: S608
        return {row[0]: audit_record(source, row) for row in cursor.fetchall()}


@dataclass
class SealSummary:
    sealed: int = 0
    busy: bool = False  # another sealer held the lock


def _cursor_get(cursor: Any, name: str) -> int:
    cursor.execute("SELECT position FROM audit_cursors WHERE name = %s", [name])
    row = cursor.fetchone()
    return int(row[0]) if row else 0


def _cursor_set(cursor: Any, name: str, position: int) -> None:
    cursor.execute(
        "INSERT INTO audit_cursors (name, position, updated_at) VALUES (%s, %s, now()) "
        "ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = now()",
        [name, position],
    )


def _unsealed(
    cursor: Any, source: Source, low: int, limit: int
) -> list[tuple[int, int, datetime, dict[str, Any]]]:
    """(id, tenant key, created_at, record) of rows above ``low`` not sealed yet, in id order."""
    cursor.execute(
        f"SELECT {source.tenant}, {source.select} FROM {source.table} t "  # noqa: S608
        "WHERE t.id > %s AND NOT EXISTS "
        "(SELECT 1 FROM audit_chain c WHERE c.source = %s AND c.source_id = t.id) "
        "ORDER BY t.id LIMIT %s",
        [low, source.name, limit],
    )
    found = []
    for row in cursor.fetchall():
        record = audit_record(source, row[1:])
        found.append((int(row[1]), int(row[0]), row[1 + source.columns.index("created_at")], record))
    return found


def _settled_low(cursor: Any, source: Source, low: int, settle_seconds: float) -> int:
    """The newest id older than the settle time: every row up to it is committed by now."""
    cursor.execute(
        f"SELECT t.id FROM {source.table} t WHERE t.id > %s "  # noqa: S608
        "AND t.created_at < now() - make_interval(secs => %s) ORDER BY t.id DESC LIMIT 1",
        [low, settle_seconds],
    )
    row = cursor.fetchone()
    return int(row[0]) if row else low


def _seal_batch(batch_size: int, settle_seconds: float) -> tuple[int, bool, bool]:
    """Seal up to ``batch_size`` rows per source; (sealed, more left, busy)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [SEAL_LOCK_KEY])
        if not cursor.fetchone()[0]:
            return 0, False, True
        pending: list[tuple[datetime, int, str, int, int, dict[str, Any]]] = []
        more = False
        for order, source in enumerate(SOURCES):
            low = _cursor_get(cursor, f"seal:{source.name}")
            rows = _unsealed(cursor, source, low, batch_size)
            for row_id, tenant_key, created_at, record in rows:
                pending.append((created_at, order, source.name, row_id, tenant_key, record))
            full = len(rows) == batch_size
            more = more or full
            settled = _settled_low(cursor, source, low, settle_seconds)
            # A full batch may have left unsealed rows after its last one: stop the mark there.
            new_low = min(settled, rows[-1][0]) if full else settled
            if new_low > low:
                _cursor_set(cursor, f"seal:{source.name}", new_low)
        if not pending:
            return 0, more, False
        pending.sort(key=lambda p: (p[0], p[1], p[3]))
        tenants = sorted({p[4] for p in pending})
        cursor.execute(
            "SELECT tenant_key, seq, chain_hash FROM audit_chain_heads WHERE tenant_key = ANY(%s)", [tenants]
        )
        heads = {row[0]: (int(row[1]), row[2]) for row in cursor.fetchall()}
        values = []
        for created_at, _order, source_name, row_id, tenant_key, record in pending:
            seq, previous = heads.get(tenant_key, (0, GENESIS))
            row_hash = record_hash(source_name, record)
            chain = link_hash(previous, row_hash)
            heads[tenant_key] = (seq + 1, chain)
            values.append((tenant_key, seq + 1, source_name, row_id, created_at, row_hash, chain))
        execute_values(
            cursor,
            "INSERT INTO audit_chain (tenant_key, seq, source, source_id, created_at, row_hash, chain_hash, "
            "sealed_at) VALUES %s",
            values,
            template="(%s, %s, %s, %s, %s, %s, %s, now())",
            page_size=1000,
        )
        execute_values(
            cursor,
            "INSERT INTO audit_chain_heads (tenant_key, seq, chain_hash, updated_at) VALUES %s "
            "ON CONFLICT (tenant_key) DO UPDATE SET seq = EXCLUDED.seq, chain_hash = EXCLUDED.chain_hash, "
            "updated_at = now()",
            [(key, heads[key][0], heads[key][1]) for key in tenants],
            template="(%s, %s, %s, now())",
        )
        return len(values), more, False


def audit_seal(*, batch_size: int | None = None, settle_seconds: float | None = None) -> SealSummary:
    """Append every committed, not yet sealed audit row and event to its tenant's chain."""
    batch = batch_size or settings.AUDIT_SEAL_BATCH_SIZE
    settle = settings.AUDIT_SEAL_SETTLE_SECONDS if settle_seconds is None else settle_seconds
    summary = SealSummary()
    while True:
        sealed, more, busy = _seal_batch(batch, settle)
        summary.sealed += sealed
        summary.busy = summary.busy or busy
        if not more:
            return summary
