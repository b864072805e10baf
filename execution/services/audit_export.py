"""Reading the sealed audit chain: export as JSON lines, and verify it (docs/audit.md).

Both walk a tenant's chain in ``seq`` order, a chunk at a time, and read each chunk's rows
from their tables by id. ``verify`` recomputes every row's hash and every link and reports
the first problem: an entry missing from the chain (a gap in ``seq``), a row missing from its
table, a row whose content no longer has its sealed hash, a link that does not follow, or
pruned entries that no retention anchor accounts for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q

from execution.models import AuditLog, Tenant
from execution.models.audit import AuditChainEntry, AuditChainHead
from execution.services.audit_chain import GENESIS, SOURCE_BY_NAME, link_hash, record_hash, source_rows

CHUNK = 2000
ANCHOR_EVENT = "audit_anchor"


def pruned_digest(seqs: list[int]) -> str:
    """What an anchor row records of the entries it pruned: sha256 of their sorted seqs."""
    return hashlib.sha256(",".join(str(s) for s in sorted(seqs)).encode()).hexdigest()


def audit_anchor_pruned(*, cursor: Any, execution_uuids: list[str]) -> int:
    """Inside retention's delete transaction: mark the chain entries of these executions'
    events pruned, each tenant's under one new anchor row; returns the entries marked."""
    cursor.execute(
        "SELECT c.tenant_key, array_agg(c.seq ORDER BY c.seq), array_agg(c.id) FROM audit_chain c "
        "JOIN execution_events e ON c.source = 'event' AND c.source_id = e.id "
        "WHERE e.execution_id = ANY(%s::uuid[]) AND c.pruned_by IS NULL GROUP BY c.tenant_key",
        [execution_uuids],
    )
    marked = 0
    for tenant_key, seqs, ids in cursor.fetchall():
        anchor = AuditLog.objects.create(
            tenant_id=tenant_key or None,
            event_type=ANCHOR_EVENT,
            reason=f"retention pruned {len(seqs)} sealed events",
            details={
                "pruned": len(seqs),
                "seqs_sha256": pruned_digest(seqs),
                "first_seq": seqs[0],
                "last_seq": seqs[-1],
            },
        )
        cursor.execute("UPDATE audit_chain SET pruned_by = %s WHERE id = ANY(%s)", [anchor.pk, ids])
        marked += len(ids)
    return marked


def tenant_label(tenant_key: int) -> str:
    if tenant_key == 0:
        return "(no tenant)"
    slug = Tenant.objects.filter(pk=tenant_key).values_list("slug", flat=True).first()
    return slug or f"tenant id {tenant_key}"


def _chunks(tenant_key: int, since: datetime | None = None) -> Iterator[list[AuditChainEntry]]:
    entries = AuditChainEntry.objects.filter(tenant_key=tenant_key)
    if since is not None:
        entries = entries.filter(created_at__gte=since)
    last = 0
    while True:
        chunk = list(entries.filter(seq__gt=last).order_by("seq")[:CHUNK])
        if not chunk:
            return
        yield chunk
        last = chunk[-1].seq


def chain_records(chunk: list[AuditChainEntry]) -> dict[tuple[str, int], dict[str, Any]]:
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for name, source in SOURCE_BY_NAME.items():
        ids = [e.source_id for e in chunk if e.source == name and e.pruned_by is None]
        for row_id, record in source_rows(source, ids).items():
            found[(name, row_id)] = record
    return found


def audit_export(*, tenant: Tenant | None, since: datetime | None = None) -> Iterator[dict[str, Any]]:
    """The sealed entries of a tenant (``None``: rows of no tenant) as export lines, in chain
    order; ``prev_hash`` lets a receiver check each link on its own."""
    key = tenant.pk if tenant is not None else 0
    label = tenant.slug if tenant is not None else ""
    previous: str | None = None
    for chunk in _chunks(key, since):
        records = chain_records(chunk)
        if previous is None:
            before = AuditChainEntry.objects.filter(tenant_key=key, seq=chunk[0].seq - 1).first()
            previous = before.chain_hash if before else GENESIS
        for entry in chunk:
            yield {
                "tenant": label,
                "seq": entry.seq,
                "source": entry.source,
                "id": entry.source_id,
                "created_at": entry.created_at.isoformat(),
                "record": records.get((entry.source, entry.source_id)),
                "pruned_by": entry.pruned_by,
                "row_hash": entry.row_hash,
                "prev_hash": previous,
                "chain_hash": entry.chain_hash,
            }
            previous = entry.chain_hash


@dataclass
class VerifyResult:
    tenant: str
    checked: int
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem


def _anchors_problem(tenant_key: int, pruned: dict[int, list[int]]) -> str:
    for anchor_id, seqs in sorted(pruned.items()):
        anchor = AuditLog.objects.filter(pk=anchor_id, event_type=ANCHOR_EVENT).first()
        details = anchor.details if anchor else {}
        anchored_tenant = (anchor.tenant_id or 0) if anchor else None
        if (
            anchor is None
            or anchored_tenant != tenant_key
            or details.get("pruned") != len(seqs)
            or details.get("seqs_sha256") != pruned_digest(seqs)
        ):
            return (
                f"pruned entries (seq {min(seqs)}..{max(seqs)}) not accounted for "
                f"by anchor audit_log id {anchor_id}"
            )
    return ""


def audit_verify_tenant(tenant_key: int) -> VerifyResult:
    result = VerifyResult(tenant=tenant_label(tenant_key), checked=0)
    previous, expected_seq = GENESIS, 1
    pruned: dict[int, list[int]] = {}
    for chunk in _chunks(tenant_key):
        records = chain_records(chunk)
        for entry in chunk:
            where = f"{SOURCE_BY_NAME[entry.source].table} id {entry.source_id} (seq {entry.seq})"
            if entry.seq != expected_seq:
                result.problem = f"chain entry missing: seq {expected_seq} (next is {where})"
                return result
            if entry.chain_hash != link_hash(previous, entry.row_hash):
                result.problem = f"chain entry altered: {where}"
                return result
            if entry.pruned_by is not None:
                pruned.setdefault(entry.pruned_by, []).append(entry.seq)
            else:
                record = records.get((entry.source, entry.source_id))
                if record is None:
                    result.problem = f"row missing: {where}"
                    return result
                if record_hash(entry.source, record) != entry.row_hash:
                    result.problem = f"row altered: {where}"
                    return result
            previous, expected_seq = entry.chain_hash, expected_seq + 1
            result.checked += 1
    head = AuditChainHead.objects.filter(tenant_key=tenant_key).first()
    if head is not None and (head.seq != expected_seq - 1 or head.chain_hash != previous):
        result.problem = f"chain entries missing after seq {expected_seq - 1} (the head is at seq {head.seq})"
        return result
    result.problem = _anchors_problem(tenant_key, pruned)
    return result


def audit_verify(*, tenant: Tenant | None = None) -> list[VerifyResult]:
    """Verify one tenant's chain, or every chain; stops each chain at its first problem."""
    if tenant is not None:
        return [audit_verify_tenant(tenant.pk)]
    keys = set(AuditChainHead.objects.values_list("tenant_key", flat=True))
    keys |= set(
        AuditChainEntry.objects.filter(~Q(tenant_key__in=keys))
        .values_list("tenant_key", flat=True)
        .distinct()
    )
    return [audit_verify_tenant(key) for key in sorted(keys)]
