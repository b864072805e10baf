"""``runbooks`` and ``runbook_versions`` (docs/runbooks.md). A version is never changed:
editing a runbook adds a version."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from execution.models.tenancy import Tenant


class Runbook(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="runbooks")
    slug = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="runbooks")
    tags = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "runbooks"
        ordering = ["tenant_id", "slug"]
        constraints = [models.UniqueConstraint(fields=["tenant", "slug"], name="runbook_unique_tenant_slug")]

    def __str__(self) -> str:
        return f"{self.slug} ({self.tenant_id})"


class RunbookVersion(models.Model):
    runbook = models.ForeignKey(Runbook, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    # A JSON Schema subset (docs/runbooks.md#parameters), checked by params.schema_check.
    parameters = models.JSONField(default=dict)
    # A plan whose string values may hold {{ params.NAME }} (render.py).
    plan = models.JSONField()
    min_approval_level = models.PositiveSmallIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "runbook_versions"
        ordering = ["runbook_id", "-number"]
        constraints = [
            # Two editors adding a version at once: one gets the number, the other retries.
            models.UniqueConstraint(fields=["runbook", "number"], name="runbook_version_unique_number"),
            models.CheckConstraint(
                condition=models.Q(min_approval_level__lte=3), name="runbook_version_level_0_3"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.runbook.slug} v{self.number}"


class MissedRuns(models.TextChoices):
    SKIP = "skip"
    RUN_ONCE = "run_once"


class RunbookSchedule(models.Model):
    """A runbook run by a clock, as its owner, with fixed parameters (docs/runbooks.md#schedules)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="runbook_schedules")
    runbook = models.ForeignKey(Runbook, on_delete=models.CASCADE, related_name="schedules")
    name = models.CharField(max_length=200)
    cron = models.CharField(max_length=100, help_text="five fields: minute hour day month weekday")
    timezone = models.CharField(max_length=64, default="UTC", help_text="an IANA name, e.g. Europe/Berlin")
    params = models.JSONField(default=dict, blank=True)
    # None: the latest version at each fire.
    version = models.PositiveIntegerField(null=True, blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    missed = models.CharField(max_length=16, choices=MissedRuns.choices, default=MissedRuns.SKIP)
    active = models.BooleanField(default=True)
    paused_reason = models.TextField(blank=True, default="")
    # The last fire time handled (run, skipped or refused); fire times after it are due.
    last_fire_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "runbook_schedules"
        ordering = ["tenant_id", "name"]
        indexes = [
            # Each cluster's tick: WHERE active.
            models.Index(fields=["active"], name="runbook_schedules_active"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.cron} {self.timezone})"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from execution.runbooks.schedules import schedule_problems

        errors: dict[str, list[str]] = {}
        for problem in schedule_problems(self):
            field = problem.path.split(".")[0].split("[")[0]
            field = field if field in ("cron", "timezone", "runbook", "version") else "params"
            errors.setdefault(field, []).append(f"{problem.path}: {problem.message}")
        if errors:
            raise ValidationError(errors)


class ScheduleFire(models.Model):
    """One fire time of a schedule. The unique row is what makes a fire time start at most
    one execution however many clusters see it due: the cluster whose insert wins launches."""

    schedule = models.ForeignKey(RunbookSchedule, on_delete=models.CASCADE, related_name="fires")
    fire_time = models.DateTimeField()
    outcome = models.CharField(max_length=16)  # launched, skipped, refused, invalid
    execution_id = models.UUIDField(null=True, blank=True)
    detail = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "runbook_schedule_fires"
        ordering = ["schedule_id", "-fire_time"]
        constraints = [
            models.UniqueConstraint(fields=["schedule", "fire_time"], name="schedule_fire_unique_time")
        ]


class TriggerFormat(models.TextChoices):
    JSON = "json"
    ALERTMANAGER = "alertmanager"


class RunbookTrigger(models.Model):
    """An inbound webhook of a runbook (docs/runbooks.md#triggers), launched as its creator."""

    trigger_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="runbook_triggers")
    runbook = models.ForeignKey(Runbook, on_delete=models.CASCADE, related_name="triggers")
    format = models.CharField(max_length=16, choices=TriggerFormat.choices, default=TriggerFormat.JSON)
    # parameter name -> RFC 6901 JSON pointer into the body (an alert, for alertmanager)
    mapping = models.JSONField(default=dict, blank=True)
    # Fernet-encrypted (execution/secrets/crypto.py): the HMAC key is shown once, when created.
    secret_ciphertext = models.TextField(editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "runbook_triggers"
        ordering = ["tenant_id", "-created_at"]

    def __str__(self) -> str:
        return f"{self.runbook.slug} hook {self.trigger_id}"


class TriggerDelivery(models.Model):
    """A signed delivery accepted by a trigger. Unique signature per trigger: a replay of a
    delivery (same timestamp, same body) is refused; the rows of the last minute count
    against the trigger's rate limit."""

    trigger = models.ForeignKey(RunbookTrigger, on_delete=models.CASCADE, related_name="deliveries")
    signature = models.CharField(max_length=64)
    sent_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)
    executions = models.JSONField(default=list, blank=True)

    class Meta:
        db_table = "runbook_trigger_deliveries"
        ordering = ["trigger_id", "-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["trigger", "signature"], name="trigger_delivery_unique_signature")
        ]
        indexes = [
            # The rate limit: WHERE trigger_id = ? AND received_at > now() - 1 minute.
            models.Index(fields=["trigger", "received_at"], name="trigger_deliveries_recent"),
        ]
