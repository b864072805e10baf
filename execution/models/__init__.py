from execution.models.assets import Asset, ReadOnlyCommandRule
from execution.models.audit import AuditChainEntry, AuditChainHead, AuditCursor
from execution.models.events import ExecutionEvent
from execution.models.execution import Execution, ExecutionStep
from execution.models.identity import OidcIdentity
from execution.models.limits import ConcurrencyLimit
from execution.models.policies import StoredPolicy, TimeoutPolicy
from execution.models.queue import DeadLetter, ExecutionLock, ExecutionLockWaiter, QueueItem
from execution.models.retention import DeadLetterArchive
from execution.models.secrets import OutboundAllowRule, SecretAccess, SecretEntry
from execution.models.targets import StepTarget
from execution.models.tenancy import AccessGrant, AuditLog, Membership, Tenant
from execution.models.tokens import ApiToken
from execution.models.workers import WorkerHeartbeat
from execution.runbooks.models import (
    Runbook,
    RunbookSchedule,
    RunbookTrigger,
    RunbookVersion,
    ScheduleFire,
    TriggerDelivery,
)

__all__ = [
    "AccessGrant",
    "ApiToken",
    "Asset",
    "AuditChainEntry",
    "AuditChainHead",
    "AuditCursor",
    "AuditLog",
    "ConcurrencyLimit",
    "DeadLetter",
    "DeadLetterArchive",
    "Execution",
    "ExecutionEvent",
    "ExecutionLock",
    "ExecutionLockWaiter",
    "ExecutionStep",
    "Membership",
    "OidcIdentity",
    "OutboundAllowRule",
    "QueueItem",
    "ReadOnlyCommandRule",
    "Runbook",
    "RunbookSchedule",
    "RunbookTrigger",
    "RunbookVersion",
    "ScheduleFire",
    "SecretAccess",
    "SecretEntry",
    "StepTarget",
    "StoredPolicy",
    "Tenant",
    "TimeoutPolicy",
    "TriggerDelivery",
    "WorkerHeartbeat",
]
