"""The encrypted secret store (docs/contract.md#secrets-and-masking ``db`` backend) and the HTTP outbound
allow-list (docs/contract.md#steps)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from execution.enums import Environment
from execution.models.tenancy import Tenant
from execution.outbound.addresses import parse_opening, pattern_problem


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
    """A host a tenant's outbound connections may name, or (superuser only) a special network
    they may reach (docs/security.md "Outbound connections").

    ``host_pattern`` is an fnmatch pattern on the host name (``api.example.com``,
    ``*.internal.example.com``) or an IP address/network; an empty environment applies to
    every environment. The settings list ``HTTP_OUTBOUND_ALLOWLIST`` applies to every tenant.
    A listed name still resolves to a public address only. With ``opens_special``, the
    pattern is a network (``10.20.0.0/16``, ``127.0.0.1:8080``) the tenant may reach although
    it is loopback, private or link-local: only a superuser sets, edits or removes that
    (``validate_editor``), a tenant admin never opens those for their own tenant.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="outbound_rules")
    environment = models.CharField(max_length=16, choices=Environment.choices, blank=True)
    host_pattern = models.CharField(max_length=255)
    opens_special = models.BooleanField(
        default=False,
        verbose_name="opens special addresses (superuser only)",
        help_text="The pattern is a network (CIDR or address, optionally :port) this tenant may reach "
        "although it is loopback, private, link-local or cloud metadata. A port is needed to reach "
        "the product's own web, database or Redis port; a metadata address opens only when named alone.",
    )
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
        special = " opens special" if self.opens_special else ""
        return f"{self.host_pattern} ({self.tenant_id}/{self.environment or '*'}){special}"

    def clean(self) -> None:
        self.host_pattern = (self.host_pattern or "").strip().lower()
        if self.opens_special:
            try:
                parse_opening(self.host_pattern)
            except ValueError as exc:
                raise ValidationError(
                    {"host_pattern": f"a rule that opens special addresses names a network: {exc}"}
                ) from None
        elif pattern_problem(self.host_pattern):
            raise ValidationError(
                {"host_pattern": f"{self.host_pattern!r} {pattern_problem(self.host_pattern)}"}
            )

    def validate_editor(self, user: Any) -> None:
        """Only a superuser creates or edits a rule that opens special addresses, or turns a
        rule into one. Raises ValidationError naming ``opens_special``; the admin form and
        ``save_model`` call it."""
        if getattr(user, "is_superuser", False):
            return
        stored = OutboundAllowRule.objects.filter(pk=self.pk).first() if self.pk is not None else None
        if self.opens_special or (stored is not None and stored.opens_special):
            raise ValidationError(
                {
                    "opens_special": "only a superuser opens special addresses (loopback, private, "
                    "link-local, metadata) or edits a rule that does"
                }
            )


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
