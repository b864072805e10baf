"""The built-in asset inventory (used when no Asset Service URL is configured)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from execution.enums import ConnectionType
from execution.models.tenancy import Tenant


def socket_path(host: str) -> bool:
    """Is ``host`` a unix socket (a directory path like libpq's ``/run/postgresql``, or an
    abstract ``@name``)? Such a server is on the worker host itself — the embedded
    PostgreSQL's socket, with trust authentication, is the product's own database — so an
    asset with one is as local as a ``local`` connection."""
    return host.startswith(("/", "@"))


class Asset(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="assets")
    hostname = models.CharField(max_length=255)
    connection_type = models.CharField(
        max_length=16, choices=ConnectionType.choices, default=ConnectionType.SSH
    )
    address = models.CharField(max_length=255, blank=True)
    port = models.PositiveIntegerField(null=True, blank=True)
    username = models.CharField(max_length=100, blank=True)
    tags = models.JSONField(default=list, blank=True)
    # A secret reference (docs/contract.md#secrets-and-masking), e.g. "db:acme/web-1-ssh#password"; never the
    # secret itself.
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

    @property
    def is_local(self) -> bool:
        return bool(self.connection_type == ConnectionType.LOCAL)

    @property
    def on_worker_host(self) -> bool:
        """A local connection, or a unix socket address: what only a superuser may make."""
        return self.is_local or socket_path(self.address or self.hostname)

    def validate_editor(self, user: Any) -> None:
        """Only a superuser creates a ``local`` asset, switches an asset to ``local`` or edits
        one: a local asset runs commands on the worker host (docs/security.md). The same for an
        address that is a unix socket on the worker host (``on_worker_host``). Raises
        ValidationError naming ``connection_type`` or ``address``; the admin and every service
        that saves an asset for a user call it."""
        if getattr(user, "is_superuser", False):
            return
        stored = Asset.objects.filter(pk=self.pk).first() if self.pk is not None else None
        if not self.is_local and socket_path(self.address or self.hostname):
            raise ValidationError(
                {
                    "address": (
                        "only a superuser may give an asset a unix socket address (a server on "
                        "the worker host, such as the product's own database)"
                    )
                }
            )
        if self.is_local or (stored is not None and stored.on_worker_host):
            raise ValidationError(
                {
                    "connection_type": (
                        "only a superuser may create or edit an asset with a local connection "
                        "(it runs commands on the worker host)"
                    )
                }
            )


class ReadOnlyCommandRule(models.Model):
    """A command a tenant declares read-only (docs/contract.md#submission): a ``command`` step declared
    ``read``
    whose command fully matches ``pattern`` (RE2 syntax, e.g. ``nginx -t``) is classified
    read; without a matching rule, declaring ``read`` on a command is refused."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="read_only_command_rules")
    pattern = models.CharField(
        max_length=500, help_text="RE2 regular expression, matched against the whole command"
    )
    description = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "read_only_command_rules"
        ordering = ["tenant_id", "pattern"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "pattern"], name="read_only_rule_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.pattern} ({self.tenant_id})"

    def clean(self) -> None:
        import re2

        try:
            re2.compile(self.pattern)
        except re2.error as exc:
            raise ValidationError({"pattern": f"not a valid RE2 expression: {exc}"}) from None
