"""``execution_dlq_archive``: what is kept of a dead letter once retention prunes its execution."""

from __future__ import annotations

from django.db import models


class DeadLetterArchive(models.Model):
    # Plain columns, no foreign keys: the execution and its dead letter are gone.
    dlq_id = models.UUIDField(unique=True)
    execution_id = models.UUIDField(db_index=True)
    tenant_id = models.BigIntegerField()
    plan_name = models.CharField(max_length=200, blank=True, default="")
    environment = models.CharField(max_length=16, blank=True, default="")
    final_status = models.CharField(max_length=32, blank=True, default="")
    failure_reason = models.CharField(max_length=200)
    failure_details = models.JSONField(default=dict, blank=True)
    attempt_count = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")  # masked when the dead letter was written
    failed_at = models.DateTimeField()
    requeued = models.BooleanField(default=False)
    requeued_at = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField()

    class Meta:
        db_table = "execution_dlq_archive"
        ordering = ["-failed_at", "-id"]
        indexes = [models.Index(fields=["tenant_id", "-failed_at"], name="dlq_archive_tenant_failed")]

    def __str__(self) -> str:
        return f"archived dead letter {self.execution_id} ({self.failure_reason})"
