"""Admin for the queue, the dead-letter queue and locks (tenant-scoped, read-only), timeout
policies and worker heartbeats (the installation's: superusers only)."""

from __future__ import annotations

from django.contrib import admin

from approvals.dlq_admin import archive_dead_letters, requeue_dead_letters
from execution.admin.access import ReadOnlyAdminMixin, SuperuserOnlyAdmin
from execution.admin.scoped import TenantScopedAdmin
from execution.models import DeadLetter, ExecutionLock, QueueItem, TimeoutPolicy, WorkerHeartbeat
from execution.selectors import worker_state


@admin.register(QueueItem)
class QueueItemAdmin(TenantScopedAdmin):
    list_display = [
        "execution",
        "status",
        "priority",
        "sla_class",
        "attempt_count",
        "max_attempts",
        "enqueued_at",
        "lease_expires_at",
    ]
    list_filter = ["status", "sla_class", "priority", ("enqueued_at", admin.DateFieldListFilter)]
    search_fields = ["=execution__execution_id"]


@admin.register(DeadLetter)
class DeadLetterAdmin(TenantScopedAdmin):
    # The confirmed requeue/archive actions (the policy's REQUEUE/ARCHIVE) live with the pages.
    actions = [requeue_dead_letters, archive_dead_letters]
    list_display = [
        "execution",
        "failure_reason",
        "attempt_count",
        "sla_class",
        "failed_at",
        "requeued",
        "requeued_by",
    ]
    list_filter = [
        "requeued",
        "archived",
        "sla_class",
        "execution__tenant",
        ("failed_at", admin.DateFieldListFilter),
    ]
    search_fields = ["=execution__execution_id", "failure_reason"]


@admin.register(ExecutionLock)
class ExecutionLockAdmin(TenantScopedAdmin):
    list_display = [
        "asset_id",
        "tenant",
        "is_active",
        "owner_tag",
        "acquired_at",
        "expires_at",
        "last_heartbeat_at",
    ]
    list_filter = ["is_active", "tenant", ("acquired_at", admin.DateFieldListFilter)]
    search_fields = ["asset_id", "=execution__execution_id"]


@admin.register(TimeoutPolicy)
class TimeoutPolicyAdmin(SuperuserOnlyAdmin):
    list_display = [
        "sla_class",
        "action_class",
        "step_timeout_seconds",
        "execution_timeout_seconds",
        "lease_timeout_seconds",
        "approval_timeout_seconds",
        "max_attempts",
        "updated_at",
    ]
    list_filter = ["sla_class", "action_class"]


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdminMixin, SuperuserOnlyAdmin):
    list_display = [
        "worker_id",
        "cluster_name",
        "hostname",
        "pid",
        "state",
        "last_seen_at",
        "current_execution_id",
    ]
    list_filter = ["cluster_name", ("last_seen_at", admin.DateFieldListFilter)]
    search_fields = ["worker_id", "hostname"]

    @admin.display(description="state")
    def state(self, obj: WorkerHeartbeat) -> str:
        """Alive or lost by heartbeat age: the same rule as /readyz and /metrics."""
        return worker_state(obj)
