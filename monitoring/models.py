"""``sla_alerts``: one row per SLA violation, so each violation alerts exactly once
(docs/contract.md#monitoring)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from execution.enums import SlaClass
from execution.fields import PgEnumField
from execution.models import Execution, Tenant


class SlaAlert(models.Model):
    class Kind(models.TextChoices):
        EXECUTION_TIMEOUT = "execution_timeout"  # past timeout_at and still not finished
        QUEUE_WAIT = "queue_wait"  # pending in the queue longer than its SLA class allows

    # What makes a violation "the same one": kind + execution + the instant or attempt it is
    # about (see monitoring/services/sla.py). The unique constraint is the exactly-once guard.
    violation_key = models.CharField(max_length=200)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    execution = models.ForeignKey(
        Execution,
        to_field="execution_id",
        db_column="execution_id",
        on_delete=models.CASCADE,
        related_name="sla_alerts",
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    sla_class = PgEnumField(enum_type="sla_class", choices=SlaClass.choices)
    limit_seconds = models.FloatField()
    observed_seconds = models.FloatField()
    # The instant the limit was measured against: timeout_at, or when the item became claimable.
    deadline_at = models.DateTimeField(null=True, blank=True)
    message = models.TextField(blank=True, default="")
    event_id = models.BigIntegerField(null=True, blank=True)
    detected_at = models.DateTimeField(auto_now_add=True)
    # An operator's acknowledgement takes the alert off the dashboard's active list.
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledge_comment = models.TextField(blank=True, default="")

    class Meta:
        db_table = "sla_alerts"
        ordering = ["-detected_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["violation_key"], name="sla_alerts_unique_violation"),
            models.CheckConstraint(
                condition=models.Q(kind__in=["execution_timeout", "queue_wait"]), name="sla_alerts_kind_valid"
            ),
        ]
        indexes = [
            # Dashboard and summary: WHERE tenant_id IN (...) ORDER BY detected_at DESC.
            models.Index(fields=["tenant", "-detected_at"], name="sla_alerts_tenant_detected"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.execution_id}"


class Rollup(models.Model):
    """Counts of finished work by minute, hour and all time (docs/operations.md, "How the
    figures are kept"): /metrics and the summary read these rows and the deltas not folded
    yet, never the executions history, and pruning old executions leaves them as they are.

    One row per (grain, period, tenant, kind, label, status, bucket); ``n`` events and the
    ``total`` of their seconds. Written only by the database (``monitoring_rollups_fold()``
    of migration 0004), read by monitoring/selectors/rollups.py.
    """

    pk = models.CompositePrimaryKey("grain", "period", "tenant_id", "kind", "label", "status", "bucket")
    grain = models.CharField(max_length=1)  # m: minute, h: hour, a: all time (period = the epoch)
    period = models.DateTimeField()  # start of the minute or hour, in UTC
    # The tenant's id, not a foreign key: a count outlives the rows it counts.
    tenant_id = models.BigIntegerField()
    kind = models.CharField(max_length=16)  # execution, sla_miss, step, queue_wait, sla_alert
    label = models.CharField(max_length=64)  # SLA class, step type or alert kind
    status = models.CharField(max_length=16)  # the execution's finished status ('' for the others)
    # m/h: the log-spaced duration bucket; a: the index of the first /metrics bucket that holds
    # the value; -1: no duration (an execution that never started, an alert).
    bucket = models.SmallIntegerField()
    n = models.BigIntegerField()
    total = models.FloatField()

    class Meta:
        db_table = "monitoring_rollups"

    def __str__(self) -> str:
        return f"{self.grain} {self.period} {self.kind} {self.label} {self.status} {self.bucket}: {self.n}"


class RollupDelta(models.Model):
    """Events recorded by the triggers of migration 0004 and not folded into ``Rollup`` yet
    (grains m and a only): one row per key and database backend (``shard``), so concurrent
    writers never wait for each other. Folded every minute (monitoring/services/rollups.py)."""

    pk = models.CompositePrimaryKey(
        "grain", "period", "tenant_id", "kind", "label", "status", "bucket", "shard"
    )
    grain = models.CharField(max_length=1)
    period = models.DateTimeField()
    tenant_id = models.BigIntegerField()
    kind = models.CharField(max_length=16)
    label = models.CharField(max_length=64)
    status = models.CharField(max_length=16)
    bucket = models.SmallIntegerField()
    shard = models.IntegerField()  # the writer's pg_backend_pid(); 0 for the backfill
    n = models.BigIntegerField()
    total = models.FloatField()

    class Meta:
        db_table = "monitoring_rollup_deltas"

    def __str__(self) -> str:
        return f"{self.grain} {self.period} {self.kind} {self.label} {self.status} {self.bucket}: {self.n}"


# Notification models live with their feature; imported here so Django registers them.
from monitoring.notifications.models import NotificationDelivery, NotificationSubscription  # noqa: E402

__all__ = ["NotificationDelivery", "NotificationSubscription", "Rollup", "RollupDelta", "SlaAlert"]
