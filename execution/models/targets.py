"""``execution_step_targets``: one row per target of a fleet step (docs/fleet.md).

Created with the step rows at submission, in the snapshot's order (``target_index``); the
worker's fan-out writes each target's start and end as they happen, so a worker that dies
leaves completed targets recorded and the resumed step skips them.
"""

from __future__ import annotations

from django.db import models

from execution.enums import TargetStatus
from execution.models.execution import ExecutionStep


class StepTarget(models.Model):
    step = models.ForeignKey(ExecutionStep, on_delete=models.CASCADE, related_name="targets")
    # The execution and the step's index, denormalised: the API and the page read a step's
    # targets by (execution, index) without the join.
    execution_id = models.UUIDField()
    step_index = models.PositiveIntegerField()
    target_index = models.PositiveIntegerField()
    asset_id = models.CharField(max_length=255)
    hostname = models.CharField(max_length=255, blank=True, default="")
    status = models.CharField(max_length=16, choices=TargetStatus.choices, default=TargetStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    batch = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    # Masked, then capped at OPS_FLEET_TARGET_OUTPUT_CAP_BYTES.
    output = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")

    class Meta:
        db_table = "execution_step_targets"
        ordering = ["execution_id", "step_index", "target_index"]
        constraints = [
            models.UniqueConstraint(fields=["step", "target_index"], name="step_targets_unique_index"),
            models.CheckConstraint(
                condition=models.Q(status__in=TargetStatus.values), name="step_targets_status_valid"
            ),
        ]
        indexes = [
            # The API list: WHERE execution_id, step_index [, status IN (...)] ORDER BY target_index.
            models.Index(
                fields=["execution_id", "step_index", "status", "target_index"], name="step_targets_list"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.execution_id}#{self.step_index}/{self.target_index} {self.hostname} ({self.status})"
