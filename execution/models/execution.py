"""``executions`` and ``execution_steps`` (docs/contract.md#data-model)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from execution.enums import (
    FINISHED_STATUSES,
    ActionClass,
    Environment,
    ExecutionMode,
    ExecutionStatus,
    SlaClass,
)
from execution.fields import PgEnumField
from execution.models.tenancy import Tenant

HEX64 = r"^[0-9a-f]{64}$"


class Execution(models.Model):
    execution_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="executions")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="executions")
    # The account that submitted on ``actor``'s behalf (NULL: the actor submitted it). Both
    # are the requester for four eyes: neither votes on it (docs/security.md#four-eyes).
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    # NULL once superseded: the claim on the key is given up in the transaction that
    # creates the successor (docs/idempotency.md); the old key stays in released_idempotency_key.
    idempotency_key = models.CharField(max_length=64, null=True, blank=True)
    released_idempotency_key = models.CharField(max_length=64, null=True, blank=True)
    plan_snapshot = models.JSONField()
    execution_mode = PgEnumField(enum_type="execution_mode", choices=ExecutionMode.choices)
    sla_class = PgEnumField(enum_type="sla_class", choices=SlaClass.choices)
    approval_level = models.PositiveSmallIntegerField(default=0)
    status = PgEnumField(
        enum_type="execution_status",
        choices=ExecutionStatus.choices,
        default=ExecutionStatus.PENDING_APPROVAL,
    )
    previous_status = PgEnumField(
        enum_type="execution_status", choices=ExecutionStatus.choices, null=True, blank=True
    )
    status_changed_at = models.DateTimeField(auto_now_add=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    timeout_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    error_message = models.TextField(blank=True, default="")
    error_details = models.JSONField(null=True, blank=True)
    trace_id = models.CharField(max_length=128, blank=True, default="")
    # The W3C traceparent of the submission's span (docs/telemetry.md): the worker's spans
    # hang under it. A database default: the worker's set-based inserts need not name it.
    trace_parent = models.CharField(max_length=55, blank=True, default="", db_default="")
    parent_execution_id = models.UUIDField(null=True, blank=True)
    tags = models.JSONField(default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Extra columns the behaviour needs (docs/contract.md#data-model allows them).
    environment = models.CharField(max_length=16, choices=Environment.choices, default=Environment.DEV)
    action_class = models.CharField(max_length=16, choices=ActionClass.choices, default=ActionClass.READ)
    priority = models.PositiveSmallIntegerField(default=5)
    dry_run = models.BooleanField(default=False)
    plan_hash = models.CharField(max_length=64, blank=True, default="")
    # The timeout policy fixed at submission (StoredPolicy.as_json()); never re-read from
    # timeout_policies at run time, so a later policy edit changes only later executions.
    timeout_policy = models.JSONField(default=dict)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    # A runbook launch's record (docs/runbooks.md): {"slug", "version", "params"}; NULL for a
    # plan submitted as it is. A snapshot like plan_snapshot: what was launched, kept as it was.
    runbook = models.JSONField(null=True, blank=True)
    cancel_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        db_table = "executions"
        ordering = ["-created_at", "-id"]
        constraints = [
            # Idempotency lookup and the race guard of docs/contract.md#submission.
            models.UniqueConstraint(fields=["tenant", "idempotency_key"], name="executions_tenant_idem_key"),
            models.CheckConstraint(
                condition=models.Q(approval_level__gte=0, approval_level__lte=3),
                name="executions_approval_level_0_3",
            ),
            models.CheckConstraint(
                condition=models.Q(priority__gte=1, priority__lte=10), name="executions_priority_1_10"
            ),
            models.CheckConstraint(
                condition=models.Q(idempotency_key__isnull=True) | models.Q(idempotency_key__regex=HEX64),
                name="executions_idem_key_hex64",
            ),
        ]
        indexes = [
            # Tenant listings: WHERE tenant_id = ? [AND status = ?] ORDER BY created_at DESC.
            models.Index(fields=["tenant", "status", "-created_at"], name="executions_tenant_status"),
            models.Index(fields=["tenant", "-created_at"], name="executions_tenant_created"),
            # SLA sweeper: running executions past timeout_at.
            models.Index(fields=["status", "timeout_at"], name="executions_status_timeout"),
            # Retention: WHERE status IN (finished) AND completed_at < ? ORDER BY completed_at, id.
            models.Index(
                fields=["completed_at", "id"],
                name="executions_finished_completed",
                condition=models.Q(status__in=sorted(str(s) for s in FINISHED_STATUSES)),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.execution_id} ({self.status})"


class ExecutionStep(models.Model):
    step_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    execution = models.ForeignKey(
        Execution,
        to_field="execution_id",
        db_column="execution_id",
        on_delete=models.CASCADE,
        related_name="steps",
    )
    step_index = models.PositiveIntegerField()
    step_name = models.CharField(max_length=200)
    step_type = models.CharField(max_length=32)
    target_asset_id = models.CharField(max_length=255, blank=True, default="")
    target_hostname = models.CharField(max_length=255, blank=True, default="")
    status = PgEnumField(
        enum_type="execution_status", choices=ExecutionStatus.choices, default=ExecutionStatus.QUEUED
    )
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    input_data = models.JSONField(default=dict, blank=True)
    output_data = models.JSONField(null=True, blank=True)
    artifacts = models.JSONField(null=True, blank=True)
    error_message = models.TextField(blank=True, default="")
    error_details = models.JSONField(null=True, blank=True)
    retry_count = models.PositiveIntegerField(default=0)
    max_retries = models.PositiveIntegerField(default=0)
    trace_id = models.CharField(max_length=128, blank=True, default="")
    logs = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Extra columns the behaviour needs.
    action_class = models.CharField(max_length=16, choices=ActionClass.choices, default=ActionClass.READ)
    exit_code = models.IntegerField(null=True, blank=True)

    class Meta:
        db_table = "execution_steps"
        ordering = ["execution_id", "step_index"]
        constraints = [
            models.UniqueConstraint(fields=["execution", "step_index"], name="steps_unique_execution_index"),
        ]
        # The 10 KB artifacts CHECK (steps_artifacts_10kb) is raw SQL in migration 0003.
        indexes = [
            # ETA history: durations per step type / name (live-progress issue).
            models.Index(fields=["step_type", "status"], name="steps_type_status"),
        ]

    def __str__(self) -> str:
        return f"{self.execution_id}#{self.step_index} {self.step_name}"
