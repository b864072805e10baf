"""The audit hash chain (docs/audit.md): every audit row and execution event, sealed after the
fact into one chain per tenant.

Nothing here is written on the hot path: rows are inserted as before (by the ORM and by the
worker's set-based statements), and the sealer (execution/services/audit_chain.py) appends
the committed ones to their tenant's chain later, in id order. A chain entry points at its
row; the row itself is not copied.
"""

from __future__ import annotations

from django.db import models


class AuditSource(models.TextChoices):
    EVENT = "event", "execution event"
    AUDIT = "audit", "audit log"
    SECRET_ACCESS = "secret_access", "secret access"


class AuditChainEntry(models.Model):
    """One sealed row: ``chain_hash = sha256(previous chain_hash + row_hash)`` within its tenant.

    The id orders entries for the sinks (a sink's cursor is the last id it delivered)."""

    # The row's tenant id; 0 for audit rows of no tenant (denials before one was known).
    tenant_key = models.BigIntegerField()
    seq = models.BigIntegerField()  # 1, 2, 3 ... within the tenant's chain
    source = models.CharField(max_length=16, choices=AuditSource.choices)
    source_id = models.BigIntegerField()
    created_at = models.DateTimeField()  # the row's own time, for export --since
    row_hash = models.CharField(max_length=64)
    chain_hash = models.CharField(max_length=64)
    sealed_at = models.DateTimeField(auto_now_add=True)
    # Set by retention when the row is deleted: the audit_log anchor row that says so.
    pruned_by = models.BigIntegerField(null=True, blank=True)

    class Meta:
        db_table = "audit_chain"
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant_key", "seq"], name="audit_chain_tenant_seq"),
            # A row is sealed once: also what the sealer's NOT EXISTS probes.
            models.UniqueConstraint(fields=["source", "source_id"], name="audit_chain_source_row"),
        ]
        indexes = [
            # export --since: WHERE tenant_key = ? AND created_at >= ? ORDER BY seq
            models.Index(fields=["tenant_key", "created_at"], name="audit_chain_tenant_time"),
            # verify of one anchor: WHERE pruned_by = ?
            models.Index(
                fields=["pruned_by"],
                name="audit_chain_pruned_by",
                condition=models.Q(pruned_by__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_key}#{self.seq} {self.source}:{self.source_id}"


class AuditChainHead(models.Model):
    """The last entry of a tenant's chain: where the next seal continues."""

    tenant_key = models.BigIntegerField(primary_key=True)
    seq = models.BigIntegerField()
    chain_hash = models.CharField(max_length=64)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "audit_chain_heads"

    def __str__(self) -> str:
        return f"{self.tenant_key}#{self.seq}"


class AuditCursor(models.Model):
    """A stored position: ``seal:<source>`` (every row up to it is sealed) or ``sink:<name>``
    (every chain entry up to it was delivered)."""

    name = models.CharField(max_length=64, primary_key=True)
    position = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "audit_cursors"

    def __str__(self) -> str:
        return f"{self.name}={self.position}"
