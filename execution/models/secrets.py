"""The encrypted secret store (docs/contract.md#secrets-and-masking ``db`` backend) and the HTTP outbound
allow-list (docs/contract.md#steps)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from execution.enums import Environment
from execution.models.tenancy import Tenant


class SecretEntry(models.Model):
    """One secret of a tenant, Fernet-encrypted at rest; the plaintext is never stored.

    ``path`` is what a reference names after ``db:`` (``db:acme/deploy-token`` -> path
    ``acme/deploy-token`` in the referring step's tenant): one tenant cannot name another's.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="secrets")
    path = models.CharField(max_length=255)
    ciphertext = models.TextField(editable=False)
    description = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "secrets"
        ordering = ["tenant_id", "path"]
        verbose_name_plural = "secrets"
        constraints = [models.UniqueConstraint(fields=["tenant", "path"], name="secret_unique_tenant_path")]

    def __str__(self) -> str:
        return f"db:{self.path} ({self.tenant_id})"


class OutboundAllowRule(models.Model):
    """A host an ``http`` step (or a validate HTTP probe) of a tenant may call.

    ``host_pattern`` is an fnmatch pattern on the URL's host name (``api.example.com``,
    ``*.internal.example.com``); an empty environment applies to every environment.
    The settings list ``HTTP_OUTBOUND_ALLOWLIST`` applies to every tenant.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="outbound_rules")
    environment = models.CharField(max_length=16, choices=Environment.choices, blank=True)
    host_pattern = models.CharField(max_length=255)
    description = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "http_outbound_allow_rules"
        ordering = ["tenant_id", "environment", "host_pattern"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "environment", "host_pattern"], name="outbound_rule_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.host_pattern} ({self.tenant_id}/{self.environment or '*'})"


class SecretAccess(models.Model):
    """One resolution of a secret reference (docs/contract.md#secrets-and-masking audit): who, which
    execution and step, which
    path; never the value. Kept by execution id (not a foreign key) so the audit outlives
    the execution rows."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="secret_accesses")
    # The execution's actor: the user on whose behalf the value was read.
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    execution_id = models.UUIDField(null=True, blank=True)
    step_index = models.IntegerField(null=True, blank=True)
    # The reference as written ("db:acme/deploy-token#field"); "credential" for an asset's.
    path = models.CharField(max_length=512)
    usage = models.CharField(max_length=16, default="param")
    worker = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "secret_access_audit"
        ordering = ["-id"]
        verbose_name_plural = "secret accesses"
        indexes = [
            # secret_accesses_of(): a tenant's recent resolutions, and one execution's.
            models.Index(fields=["tenant", "created_at"], name="secret_access_tenant_time"),
            models.Index(fields=["execution_id"], name="secret_access_execution"),
        ]

    def __str__(self) -> str:
        return f"{self.path} for {self.execution_id} step {self.step_index}"
