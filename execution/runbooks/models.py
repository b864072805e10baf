"""``runbooks`` and ``runbook_versions`` (docs/runbooks.md). A version is never changed:
editing a runbook adds a version."""

from __future__ import annotations

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
