"""``execution_queue``, ``execution_dlq`` and ``execution_locks`` (docs/contract.md#data-model,
docs/contract.md#queue-and-workers)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from execution.enums import DlqFault, Environment, LockMode, QueueStatus, SlaClass
from execution.fields import PgEnumField
from execution.models.execution import Execution
from execution.models.tenancy import Tenant


class QueueItem(models.Model):
    queue_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    execution = models.OneToOneField(
        Execution,
        to_field="execution_id",
        db_column="execution_id",
        on_delete=models.CASCADE,
        related_name="queue_item",
    )
    priority = models.PositiveSmallIntegerField(default=5)
    sla_class = PgEnumField(enum_type="sla_class", choices=SlaClass.choices)
    lease_token = models.UUIDField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    visibility_timeout_seconds = models.PositiveIntegerField(default=30)
    attempt_count = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    last_error = models.TextField(blank=True, default="")
    enqueued_at = models.DateTimeField(auto_now_add=True)
    dequeued_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=QueueStatus.choices, default=QueueStatus.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Back-off: not claimable before this instant (NULL: now); infinity while parked in a
    # lock's line.
    available_at = models.DateTimeField(null=True, blank=True)
    # When the current attempt's lease was first taken (bounds it by visibility_timeout_seconds).
    attempt_started_at = models.DateTimeField(null=True, blank=True)
    worker_id = models.CharField(max_length=200, blank=True, default="")
    # The execution's tenant and environment (they never change), for the fair claim
    # (docs/engine.md "The fair claim"): every writer of an item sets them.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    environment = models.CharField(max_length=16, choices=Environment.choices)

    class Meta:
        db_table = "execution_queue"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(priority__gte=1, priority__lte=10), name="queue_priority_1_10"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=[s.value for s in QueueStatus]), name="queue_status_valid"
            ),
        ]
        indexes = [
            # Claim: WHERE status = 'pending' AND available_at <= now()
            #        ORDER BY priority, enqueued_at, id  FOR UPDATE SKIP LOCKED.
            models.Index(
                fields=["priority", "enqueued_at", "id"],
                name="queue_claim_pending",
                condition=models.Q(status="pending"),
            ),
            # The fair claim: per (tenant, environment) with runnable work, its first items
            # (execution/worker/claim.py). Parked items (available_at infinity) are not in it.
            models.Index(
                fields=["tenant", "environment", "priority", "enqueued_at", "id"],
                name="queue_claim_fair",
                condition=models.Q(status="pending")
                & (models.Q(available_at__isnull=True) | models.Q(available_at__lt=models.Value("infinity"))),
            ),
            # Reaper: WHERE status = 'processing' AND lease_expires_at < now().
            models.Index(
                fields=["lease_expires_at"],
                name="queue_lease_processing",
                condition=models.Q(status="processing"),
            ),
        ]


class DeadLetter(models.Model):
    dlq_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    execution = models.OneToOneField(
        Execution,
        to_field="execution_id",
        db_column="execution_id",
        on_delete=models.CASCADE,
        related_name="dead_letter",
    )
    # Which fault of the platform put it here (docs/contract.md#truth).
    failure_reason = models.CharField(max_length=200, choices=DlqFault.choices)
    failure_details = models.JSONField(default=dict, blank=True)
    attempt_count = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    original_queue_id = models.UUIDField(null=True, blank=True)
    sla_class = PgEnumField(enum_type="sla_class", choices=SlaClass.choices)
    failed_at = models.DateTimeField()
    requeued = models.BooleanField(default=False)
    requeued_at = models.DateTimeField(null=True, blank=True)
    requeued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_column="requeued_by",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    archived = models.BooleanField(default=False)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "execution_dlq"
        ordering = ["-failed_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(failure_reason__in=[f.value for f in DlqFault]), name="dlq_fault_valid"
            ),
        ]
        indexes = [models.Index(fields=["requeued", "archived", "-failed_at"], name="dlq_open_failed")]


class ExecutionLock(models.Model):
    """One row per (asset, tenant), reused: the lock's state (docs/engine.md "Locks").

    ``execution_id``/``owner_tag`` name the holder of record (the first holder still in);
    ``holders`` lists every execution that holds it: one for ``exclusive``, any number for
    ``shared``. Every change of a lock happens under this row's lock, in id order when a
    statement touches several (execution/worker/lock_sql.py), and bumps ``version``.
    """

    lock_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    asset_id = models.CharField(max_length=255)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    execution = models.ForeignKey(
        Execution,
        to_field="execution_id",
        db_column="execution_id",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="locks",
    )
    owner_tag = models.CharField(max_length=300, blank=True, default="")
    acquired_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    mode = models.CharField(max_length=10, choices=LockMode.choices, default=LockMode.EXCLUSIVE)
    holders = ArrayField(models.UUIDField(), default=list, blank=True)
    # Bumped by every take, park and release: a release that finds the row newer than its
    # snapshot knows a waiter may have parked meanwhile and wakes again (docs/engine.md).
    version = models.BigIntegerField(default=0)

    class Meta:
        db_table = "execution_locks"
        constraints = [
            models.UniqueConstraint(fields=["asset_id", "tenant"], name="locks_unique_asset_tenant"),
            models.CheckConstraint(
                condition=models.Q(mode__in=[m.value for m in LockMode]), name="locks_mode_valid"
            ),
        ]
        indexes = [
            # Reaper: WHERE is_active AND expires_at < now().
            models.Index(
                fields=["expires_at"], name="locks_active_expiry", condition=models.Q(is_active=True)
            ),
        ]


class ExecutionLockWaiter(models.Model):
    """An execution waiting for a lock: its place in the asset's line (priority, then since).

    A parked execution's queue item stays ``pending`` but is not claimable until a release
    wakes it (docs/engine.md "Locks"). The row goes when the execution takes its locks,
    leaves the queue, or is found stale by the sweep.
    """

    asset_id = models.CharField(max_length=255)
    # The line index below leads with the tenant: no index of its own.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    execution = models.ForeignKey(
        Execution,
        to_field="execution_id",
        db_column="execution_id",
        on_delete=models.CASCADE,
        related_name="lock_waits",
    )
    mode = models.CharField(max_length=10, choices=LockMode.choices)
    priority = models.PositiveSmallIntegerField(default=5)
    # When this execution began waiting (kept when it moves on to wait for another asset).
    since = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "execution_lock_waiters"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "asset_id", "execution"], name="lock_waiters_unique_asset_execution"
            ),
            models.CheckConstraint(
                condition=models.Q(mode__in=[m.value for m in LockMode]), name="lock_waiters_mode_valid"
            ),
        ]
        indexes = [
            # The line of an asset: WHERE tenant_id = ? AND asset_id = ? ORDER BY priority, since, id.
            models.Index(fields=["tenant", "asset_id", "priority", "since", "id"], name="lock_waiters_line"),
        ]
