"""The built-in asset inventory (used when no Asset Service URL is configured)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from execution.enums import ConnectionType
from execution.models.tenancy import Tenant
from execution.outbound.addresses import host_problem

# Connection types whose address is a host reached over the network (a ``local`` asset runs
# on the worker host; an ``automation`` one is named to the Automation Service).
NETWORK_CONNECTIONS = (ConnectionType.SSH, ConnectionType.DATABASE, ConnectionType.HTTP)
# What a database asset's metadata may say about its connection; everything else of libpq's
# (host lists, sockets, service, passfile, options, certificate paths) is the guard's or fixed.
DATABASE_SSL_MODES = ("disable", "allow", "prefer", "require", "verify-full")
_DATABASE_NAME_MAX = 63


def database_name_problem(name: object) -> str | None:
    """None when ``name`` is a plain database name (what libpq's ``dbname`` gets), else why not."""
    if not isinstance(name, str) or not name:
        return "must be a non-empty text"
    if len(name.encode()) > _DATABASE_NAME_MAX:
        return f"is longer than {_DATABASE_NAME_MAX} bytes"
    if any(ch.isspace() or ord(ch) < 32 or ch == "\x7f" for ch in name) or "=" in name or "://" in name:
        return "is not a plain database name (no whitespace, control characters, '=' or '://')"
    return None


def asset_address_problems(
    *, connection_type: str, hostname: str, address: str, metadata: object
) -> dict[str, str]:
    """Field -> why, for the address rules of docs/security.md ("Addresses are one host"):
    the host a network asset is reached at (its address, else its hostname) is one host
    name or IP literal; a database asset's metadata names a plain database and an SSL mode.
    The model's ``clean`` and the Asset Service answers use it; the guard checks again at
    connect."""
    problems: dict[str, str] = {}
    if address:
        problem = host_problem(address)
        if problem:
            problems["address"] = f"{address!r} {problem}"
    elif connection_type in NETWORK_CONNECTIONS:
        problem = host_problem(hostname)
        if problem:
            problems["hostname"] = f"{hostname!r} {problem} (without an address, the hostname is the address)"
    if connection_type == ConnectionType.DATABASE and isinstance(metadata, dict):
        if "database" in metadata:
            problem = database_name_problem(metadata["database"])
            if problem:
                problems["metadata"] = f"metadata.database {problem}"
        mode = metadata.get("sslmode")
        if mode is not None and mode not in DATABASE_SSL_MODES:
            problems["metadata"] = f"metadata.sslmode must be one of {', '.join(DATABASE_SSL_MODES)}"
    return problems


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

    def clean(self) -> None:
        problems = asset_address_problems(
            connection_type=self.connection_type,
            hostname=self.hostname,
            address=self.address,
            metadata=self.metadata,
        )
        if problems:
            raise ValidationError(problems)

    def validate_editor(self, user: Any) -> None:
        """Only a superuser creates a ``local`` asset, switches an asset to ``local`` or edits
        one: a local asset runs commands on the worker host (docs/security.md). Raises
        ValidationError naming ``connection_type``; the admin and every service that saves an
        asset for a user call it. (No address reaches the worker host otherwise: ``clean``
        refuses unix socket paths and host lists for everyone.)"""
        if getattr(user, "is_superuser", False):
            return
        stored = Asset.objects.filter(pk=self.pk).first() if self.pk is not None else None
        if self.is_local or (stored is not None and stored.is_local):
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
