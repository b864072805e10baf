"""``concurrency_limits`` (docs/contract.md#concurrency-limits): executions running at once."""

from __future__ import annotations

from django.db import models

from execution.enums import Environment
from execution.models.tenancy import Tenant


class ConcurrencyLimit(models.Model):
    """At most ``max_running`` executions of the tenant (of one environment, when set) run at
    once. No row: no limit. The claim honours it (execution/services/limits.py)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="concurrency_limits")
    environment = models.CharField(
        max_length=16,
        choices=Environment.choices,
        blank=True,
        default="",
        help_text="Empty: the tenant's executions in every environment together.",
    )
    max_running = models.PositiveIntegerField(help_text="Executions of this scope running at once (>= 1).")
    description = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "concurrency_limits"
        ordering = ["tenant_id", "environment"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "environment"], name="concurrency_limit_unique_scope"),
            models.CheckConstraint(
                condition=models.Q(max_running__gte=1), name="concurrency_limit_at_least_1"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tenant} {self.environment or 'all environments'}: {self.max_running}"
