"""``execution_events``: the append-only audit trail and the source of live progress
(docs/contract.md#data-model, docs/contract.md#live-progress)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from execution.enums import ActorType, ExecutionStatus
from execution.fields import PgEnumField
from execution.models.execution import Execution


class ExecutionEvent(models.Model):
    # BigAutoField id: monotonic, the cursor for ?after=<event id> replay.
    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    execution = models.ForeignKey(
        Execution,
        to_field="execution_id",
        db_column="execution_id",
        on_delete=models.CASCADE,
        related_name="events",
    )
    event_type = models.CharField(max_length=64)
    from_status = PgEnumField(
        enum_type="execution_status", choices=ExecutionStatus.choices, null=True, blank=True
    )
    to_status = PgEnumField(
        enum_type="execution_status", choices=ExecutionStatus.choices, null=True, blank=True
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_type = models.CharField(max_length=16, choices=ActorType.choices, default=ActorType.SYSTEM)
    details = models.JSONField(default=dict, blank=True)
    error_message = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    trace_id = models.CharField(max_length=128, blank=True, default="")
    # Denormalised so a tenant's stream can be read without a join.
    tenant_id = models.BigIntegerField(db_index=False)
    step_index = models.IntegerField(null=True, blank=True)

    class Meta:
        db_table = "execution_events"
        ordering = ["id"]
        indexes = [
            # Replay: WHERE execution_id = ? AND id > ? ORDER BY id.
            models.Index(fields=["execution", "id"], name="events_execution_id"),
            # Tenant stream replay: WHERE tenant_id = ? AND id > ? ORDER BY id.
            models.Index(fields=["tenant_id", "id"], name="events_tenant_id"),
            models.Index(fields=["event_type", "created_at"], name="events_type_created"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(actor_type__in=[a.value for a in ActorType]),
                name="events_actor_type_valid",
            )
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.event_type} {self.execution_id}"
