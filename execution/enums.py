"""Every status and class value of the product, mirrored by PostgreSQL enum types.

The four ``PG_ENUMS`` are created as real ``ENUM`` types by migration 0001 and used by the
columns (see execution/fields.py); the database refuses any other value.
"""

from __future__ import annotations

from django.db import models


class ExecutionStatus(models.TextChoices):
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    PARTIAL = "partial"


class TargetStatus(models.TextChoices):
    """One target of a fleet step (docs/fleet.md): pending until it starts; waiting while its
    asset's lock is held by another execution (``step`` scope: put aside, started when the
    lock is released); skipped when the step stopped (failure budget spent, cancel) before
    it started."""

    PENDING = "pending"
    WAITING = "waiting"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"


# A target in one of these has not ended yet (progress counts the others done).
TARGETS_UNFINISHED = (TargetStatus.PENDING, TargetStatus.WAITING, TargetStatus.RUNNING)


class ExecutionMode(models.TextChoices):
    IMMEDIATE = "immediate"
    BACKGROUND = "background"


class SlaClass(models.TextChoices):
    FAST = "fast"
    MEDIUM = "medium"
    LONG = "long"


class ApprovalState(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"


class ActionClass(models.TextChoices):
    READ = "read"
    MODIFY = "modify"
    DEPLOY = "deploy"


ACTION_CLASS_RANK = {ActionClass.READ: 0, ActionClass.MODIFY: 1, ActionClass.DEPLOY: 2}

# A step's own retries when its plan does not say (docs/contract.md#truth): a read may be
# asked again, a change is not repeated unless its plan asks for it.
STEP_MAX_RETRIES_DEFAULT = {ActionClass.READ: 2, ActionClass.MODIFY: 0, ActionClass.DEPLOY: 0}


class DlqFault(models.TextChoices):
    """Why an execution is in the dead-letter queue: a fault of the platform, never a step
    that ran and failed (docs/contract.md#truth). ``execution_dlq.failure_reason`` holds one."""

    WORKER_LOST = "worker_lost", "worker lost (its lease ran out: the process died or lost the database)"
    LEASE_TIMEOUT = "lease_timeout", "held past the policy's lease timeout (a live but stuck worker)"
    DATABASE_UNREACHABLE = "database_unreachable", "the database was unreachable during the attempt"
    WORKER_CRASHED = "worker_crashed", "the attempt crashed in the worker"
    EXECUTION_TIMEOUT = "execution_timeout", "the execution ran past its timeout"
    LOCK_WAIT_EXCEEDED = "lock_wait_exceeded", "waited for an asset lock past the limit"
    TARGET_UNREACHABLE = "target_unreachable", "a step's target could not be reached (nothing was sent to it)"
    # Only on entries written before step failures stopped going to the DLQ (migration 0021).
    STEP_FAILED = "step_failed", "a step failed (recorded by an earlier release)"


class Environment(models.TextChoices):
    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"


class QueueStatus(models.TextChoices):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


class LockMode(models.TextChoices):
    """How a step holds its target (docs/contract.md#asset-locks): readers share, writers exclude."""

    SHARED = "shared"
    EXCLUSIVE = "exclusive"


class LockScope(models.TextChoices):
    """How long a plan holds its locks (docs/contract.md#asset-locks)."""

    EXECUTION = "execution"  # every target up front, sorted, all or nothing, held to the end
    STEP = "step"  # each step locks its targets when it starts and releases them at its end


class ActorType(models.TextChoices):
    USER = "user"
    SYSTEM = "system"
    WORKER = "worker"


class Role(models.TextChoices):
    VIEWER = "viewer"
    OPERATOR = "operator"
    DEPLOYER = "deployer"
    APPROVER = "approver"
    ADMIN = "admin"


class ConnectionType(models.TextChoices):
    LOCAL = "local"
    SSH = "ssh"
    AUTOMATION = "automation"
    HTTP = "http"
    DATABASE = "database"


# PostgreSQL enum type name -> its values, in declaration order.
PG_ENUMS: dict[str, list[str]] = {
    "execution_status": [c.value for c in ExecutionStatus],
    "execution_mode": [c.value for c in ExecutionMode],
    "sla_class": [c.value for c in SlaClass],
    "approval_state": [c.value for c in ApprovalState],
}

# Statuses in which an execution has ended. failed and timeout may still be requeued by an
# operator from the dead-letter queue (docs/contract.md#state-machine); the others are terminal for good.
FINISHED_STATUSES = frozenset(
    {
        ExecutionStatus.COMPLETED,
        ExecutionStatus.REJECTED,
        ExecutionStatus.CANCELLED,
        ExecutionStatus.PARTIAL,
        ExecutionStatus.FAILED,
        ExecutionStatus.TIMEOUT,
    }
)
