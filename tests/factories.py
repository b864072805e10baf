"""One factory per model (factory_boy)."""

from __future__ import annotations

import hashlib
import json
import uuid

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from approvals.models import Approval, ApprovalVote, ChangeFreeze, GateApproval, GateVote, StandardChange
from execution.enums import (
    ActionClass,
    ConnectionType,
    DlqFault,
    ExecutionMode,
    ExecutionStatus,
    QueueStatus,
    Role,
    SlaClass,
)
from execution.models import (
    AccessGrant,
    Asset,
    AuditLog,
    ConcurrencyLimit,
    DeadLetter,
    DeadLetterArchive,
    Execution,
    ExecutionEvent,
    ExecutionLock,
    ExecutionStep,
    Membership,
    OutboundAllowRule,
    QueueItem,
    ReadOnlyCommandRule,
    SecretAccess,
    SecretEntry,
    StoredPolicy,
    Tenant,
    TimeoutPolicy,
    WorkerHeartbeat,
)
from execution.runbooks.models import Runbook, RunbookSchedule, RunbookVersion
from execution.secrets.crypto import encrypt
from monitoring.models import SlaAlert
from monitoring.notifications.models import NotificationDelivery, NotificationSubscription


def plan_hash(plan: dict) -> str:  # type: ignore[type-arg]
    return hashlib.sha256(json.dumps(plan, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests")


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"tenant-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    tenant = factory.SubFactory(TenantFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.OPERATOR


class AccessGrantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AccessGrant

    tenant = factory.SubFactory(TenantFactory)
    user = factory.SubFactory(UserFactory)
    action_class = ActionClass.MODIFY


class AuditLogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AuditLog

    tenant = factory.SubFactory(TenantFactory)
    event_type = "rbac_violation"
    reason = "test"


class AssetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Asset

    tenant = factory.SubFactory(TenantFactory)
    hostname = factory.Sequence(lambda n: f"host-{n}")
    connection_type = ConnectionType.LOCAL
    address = "127.0.0.1"


class LocalAssetFactory(AssetFactory):
    """An asset whose commands run on the worker host (made by a superuser in real life)."""

    hostname = factory.Sequence(lambda n: f"local-{n}")
    connection_type = ConnectionType.LOCAL


class ReadOnlyCommandRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReadOnlyCommandRule

    tenant = factory.SubFactory(TenantFactory)
    pattern = "nginx -t"


def snapshot_overwrite(execution_pk: int, plan: dict) -> None:  # type: ignore[type-arg]
    """Rewrite a stored plan as a tamperer with database superuser rights would: around the
    trigger that refuses the UPDATE (migration 0007)."""
    from django.db import connection

    with connection.cursor() as cursor:
        # Inside a test's transaction: deferred FK checks would make ALTER TABLE refuse.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE executions DISABLE TRIGGER executions_plan_immutable")
        try:
            cursor.execute(
                "UPDATE executions SET plan_snapshot = %s::jsonb WHERE id = %s",
                [json.dumps(plan), execution_pk],
            )
        finally:
            cursor.execute("ALTER TABLE executions ENABLE TRIGGER executions_plan_immutable")


def _default_plan() -> dict:  # type: ignore[type-arg]
    return {
        "name": "noop plan",
        "environment": "dev",
        "steps": [{"name": "nothing", "type": "noop", "params": {}}],
    }


class ExecutionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Execution

    tenant = factory.SubFactory(TenantFactory)
    actor = factory.SubFactory(UserFactory)
    idempotency_key = factory.LazyFunction(lambda: uuid.uuid4().hex + uuid.uuid4().hex)
    plan_snapshot = factory.LazyFunction(_default_plan)
    plan_hash = factory.LazyAttribute(lambda o: plan_hash(o.plan_snapshot))
    execution_mode = ExecutionMode.BACKGROUND
    sla_class = SlaClass.FAST
    action_class = ActionClass.READ
    status = ExecutionStatus.PENDING_APPROVAL
    # The policy in force at "submission", as execution_submit stores it.
    timeout_policy = factory.LazyAttribute(
        lambda o: StoredPolicy.of(
            TimeoutPolicy.objects.get(sla_class=o.sla_class, action_class=o.action_class)
        ).as_json()
    )


class ExecutionStepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExecutionStep

    execution = factory.SubFactory(ExecutionFactory)
    step_index = factory.Sequence(lambda n: n)
    step_name = "step"
    step_type = "noop"


class ExecutionEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExecutionEvent

    execution = factory.SubFactory(ExecutionFactory)
    tenant_id = factory.LazyAttribute(lambda o: o.execution.tenant_id)
    event_type = "created"


class QueueItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = QueueItem

    execution = factory.SubFactory(ExecutionFactory)
    tenant = factory.LazyAttribute(lambda o: o.execution.tenant)
    environment = factory.LazyAttribute(lambda o: o.execution.environment)
    priority = 5
    sla_class = SlaClass.FAST
    status = QueueStatus.PENDING
    available_at = factory.LazyFunction(timezone.now)


class DeadLetterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DeadLetter

    execution = factory.SubFactory(ExecutionFactory, status=ExecutionStatus.FAILED)
    failure_reason = DlqFault.WORKER_LOST
    sla_class = SlaClass.FAST
    failed_at = factory.LazyFunction(timezone.now)


class ExecutionLockFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExecutionLock

    tenant = factory.SubFactory(TenantFactory)
    asset_id = factory.Sequence(lambda n: str(n))


class TimeoutPolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TimeoutPolicy
        django_get_or_create = ("sla_class", "action_class")

    sla_class = SlaClass.FAST
    action_class = ActionClass.READ
    step_timeout_seconds = 5
    execution_timeout_seconds = 10
    lease_timeout_seconds = 15
    approval_timeout_seconds = 300
    max_attempts = 3


class ApprovalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Approval

    execution = factory.SubFactory(ExecutionFactory)
    approval_level = 1
    plan_hash = factory.LazyAttribute(lambda o: o.execution.plan_hash)
    requested_at = factory.LazyFunction(timezone.now)
    expires_at = factory.LazyFunction(lambda: timezone.now() + timezone.timedelta(minutes=10))


class ApprovalVoteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ApprovalVote

    approval = factory.SubFactory(ApprovalFactory)
    voter = factory.SubFactory(UserFactory)
    decision = ApprovalVote.Decision.APPROVE


class StandardChangeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StandardChange

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"standard change {n}")
    plan_name_pattern = "rotate .*"
    environment = "staging"
    action_class = "read"


class ChangeFreezeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ChangeFreeze

    tenant = factory.SubFactory(TenantFactory)
    environment = "prod"
    starts_at = factory.LazyFunction(timezone.now)
    ends_at = factory.LazyFunction(lambda: timezone.now() + timezone.timedelta(hours=2))
    effect = "refuse"
    reason = "a freeze"


class GateApprovalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GateApproval

    execution = factory.SubFactory(ExecutionFactory)
    step_index = 1
    approval_level = 1
    plan_hash = factory.LazyAttribute(lambda o: o.execution.plan_hash)
    requested_at = factory.LazyFunction(timezone.now)
    expires_at = factory.LazyFunction(lambda: timezone.now() + timezone.timedelta(minutes=10))


class GateVoteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GateVote

    approval = factory.SubFactory(GateApprovalFactory)
    voter = factory.SubFactory(UserFactory)
    decision = ApprovalVote.Decision.APPROVE


class WorkerHeartbeatFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WorkerHeartbeat

    worker_id = factory.Sequence(lambda n: f"cluster:worker-host:{n}")  # a cluster's own row
    cluster_name = "opsconductor"
    started_at = factory.LazyFunction(timezone.now)
    last_seen_at = factory.LazyFunction(timezone.now)


class SecretEntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SecretEntry

    tenant = factory.SubFactory(TenantFactory)
    path = factory.Sequence(lambda n: f"app/secret-{n}")
    ciphertext = factory.LazyFunction(lambda: encrypt("a-long-enough-value"))


class SecretAccessFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SecretAccess

    tenant = factory.SubFactory(TenantFactory)
    execution_id = factory.LazyFunction(uuid.uuid4)
    step_index = 0
    path = factory.Sequence(lambda n: f"db:app/secret-{n}")


class OutboundAllowRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OutboundAllowRule

    tenant = factory.SubFactory(TenantFactory)
    host_pattern = factory.Sequence(lambda n: f"api-{n}.example.com")


class ConcurrencyLimitFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ConcurrencyLimit

    tenant = factory.SubFactory(TenantFactory)
    max_running = 3


class DeadLetterArchiveFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DeadLetterArchive

    dlq_id = factory.LazyFunction(uuid.uuid4)
    execution_id = factory.LazyFunction(uuid.uuid4)
    tenant_id = factory.LazyAttribute(lambda o: TenantFactory().pk)
    failure_reason = "max_attempts_exceeded"
    failed_at = factory.LazyFunction(timezone.now)
    archived_at = factory.LazyFunction(timezone.now)


class SlaAlertFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SlaAlert

    execution = factory.SubFactory(ExecutionFactory, status=ExecutionStatus.RUNNING)
    tenant = factory.LazyAttribute(lambda o: o.execution.tenant)
    violation_key = factory.Sequence(lambda n: f"execution_timeout:{n}")
    kind = SlaAlert.Kind.EXECUTION_TIMEOUT
    sla_class = SlaClass.FAST
    limit_seconds = 10.0
    observed_seconds = 12.0


class NotificationSubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = NotificationSubscription

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"subscription-{n}")
    kinds = factory.LazyFunction(lambda: ["failed"])
    channel = "email"
    destination = "oncall@example.com"


class NotificationDeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = NotificationDelivery

    subscription = factory.SubFactory(NotificationSubscriptionFactory)
    tenant = factory.LazyAttribute(lambda o: o.subscription.tenant)
    event_id = factory.Sequence(lambda n: n + 1)
    execution_id = factory.LazyFunction(uuid.uuid4)
    kind = "failed"
    channel = "email"
    subject = "an execution failed"
    body = "the body of the message"


def token_for(user: object, tenant: Tenant | None = None, *, name: str = "") -> str:
    """A new API key for ``user`` bound to ``tenant`` (default: the user's first membership's
    tenant, by id), as the installation issues it (no policy). A key-only helper for tests."""
    from execution.services.tokens import api_token_issue

    if tenant is None:
        membership = Membership.objects.filter(user=user).order_by("id").select_related("tenant").first()
        if membership is None:
            raise ValueError(f"{user} is a member of no tenant: name the tenant of the token")
        tenant = membership.tenant
    return api_token_issue(user=user, tenant=tenant, name=name or f"test-{uuid.uuid4().hex[:12]}").key


def runbook_plan() -> dict:  # type: ignore[type-arg]
    return {
        "name": "say {{ params.word }}",
        "environment": "dev",
        "steps": [{"name": "noop", "type": "noop", "params": {"message": "{{ params.word }}"}}],
    }


class RunbookFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Runbook
        skip_postgeneration_save = True

    tenant = factory.SubFactory(TenantFactory)
    slug = factory.Sequence(lambda n: f"runbook-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())
    owner = factory.SubFactory(UserFactory)
    version = factory.RelatedFactory(
        "tests.factories.RunbookVersionFactory", factory_related_name="runbook", number=1
    )


class RunbookVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RunbookVersion

    runbook = factory.SubFactory(RunbookFactory, version=None)
    number = factory.Sequence(lambda n: n + 100)
    parameters = factory.LazyFunction(
        lambda: {"type": "object", "properties": {"word": {"type": "string", "default": "hello"}}}
    )
    plan = factory.LazyFunction(runbook_plan)


class RunbookScheduleFactory(factory.django.DjangoModelFactory):
    """Not ``ScheduleFactory``: the admin walker finds factories by model name, and
    django-q2's ``Schedule`` would take that one."""

    class Meta:
        model = RunbookSchedule

    tenant = factory.SubFactory(TenantFactory)
    runbook = factory.SubFactory(RunbookFactory, tenant=factory.SelfAttribute("..tenant"))
    name = factory.Sequence(lambda n: f"nightly-{n}")
    cron = "0 3 * * *"
    timezone = "UTC"
    owner = factory.SubFactory(UserFactory)
