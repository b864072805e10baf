"""``timeout_policies`` (docs/contract.md#data-model): seeded with nine rows by migration 0004, edited in the
admin."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from django.db import models

from execution.enums import ActionClass, SlaClass
from execution.fields import PgEnumField


class TimeoutPolicy(models.Model):
    sla_class = PgEnumField(enum_type="sla_class", choices=SlaClass.choices)
    action_class = models.CharField(max_length=16, choices=ActionClass.choices)
    step_timeout_seconds = models.PositiveIntegerField()
    execution_timeout_seconds = models.PositiveIntegerField()
    lease_timeout_seconds = models.PositiveIntegerField()
    approval_timeout_seconds = models.PositiveIntegerField()
    max_attempts = models.PositiveIntegerField()
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "timeout_policies"
        ordering = ["sla_class", "action_class"]
        constraints = [
            models.UniqueConstraint(fields=["sla_class", "action_class"], name="policies_unique_sla_action"),
            models.CheckConstraint(
                condition=models.Q(action_class__in=[a.value for a in ActionClass]),
                name="policies_action_class_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    step_timeout_seconds__gt=0,
                    execution_timeout_seconds__gt=0,
                    lease_timeout_seconds__gt=0,
                    approval_timeout_seconds__gt=0,
                    max_attempts__gt=0,
                ),
                name="policies_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sla_class} x {self.action_class}"


# The values an execution keeps from its policy at submission (docs/contract.md#queue-and-workers: a later
# edit of the
# policy changes only executions submitted afterwards). Stored in executions.timeout_policy.
POLICY_FIELDS = (
    "step_timeout_seconds",
    "execution_timeout_seconds",
    "lease_timeout_seconds",
    "approval_timeout_seconds",
    "max_attempts",
)


@dataclass(frozen=True)
class StoredPolicy:
    """The timeout policy fixed on an execution when it was submitted."""

    step_timeout_seconds: int
    execution_timeout_seconds: int
    lease_timeout_seconds: int
    approval_timeout_seconds: int
    max_attempts: int

    @classmethod
    def of(cls, policy: TimeoutPolicy) -> StoredPolicy:
        return cls(**{name: int(getattr(policy, name)) for name in POLICY_FIELDS})

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StoredPolicy:
        return cls(**{name: int(data[name]) for name in POLICY_FIELDS})

    def as_json(self) -> dict[str, int]:
        return asdict(self)
