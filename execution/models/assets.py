"""The built-in asset inventory (used when no Asset Service URL is configured)."""

from __future__ import annotations

from django.db import models

from execution.enums import ConnectionType
from execution.models.tenancy import Tenant


class Asset(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="assets")
    hostname = models.CharField(max_length=255)
    connection_type = models.CharField(
        max_length=16, choices=ConnectionType.choices, default=ConnectionType.LOCAL
    )
    address = models.CharField(max_length=255, blank=True)
    port = models.PositiveIntegerField(null=True, blank=True)
    username = models.CharField(max_length=100, blank=True)
    tags = models.JSONField(default=list, blank=True)
    # A secret reference (§10), e.g. "db:acme/web-1-ssh#password"; never the secret itself.
    credential_ref = models.CharField(max_length=500, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "assets"
        ordering = ["tenant_id", "hostname"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "hostname"], name="asset_unique_tenant_hostname"),
            models.CheckConstraint(
                condition=models.Q(port__isnull=True) | models.Q(port__gte=1, port__lte=65535),
                name="asset_port_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.hostname} ({self.tenant_id})"
