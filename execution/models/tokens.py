"""API tokens (docs/api.md#tokens): named, several per user, bound to one tenant, optionally
expiring, stored hashed. The key is shown once when issued; the row keeps its SHA-256 only,
so a database dump gives no usable token."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from execution.models.tenancy import Tenant

TOKEN_NAME_MAX = 100


class ApiToken(models.Model):
    # The public id (REST, pages): the integer pk is never shown.
    token_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    # The one tenant the token reads and acts in, whatever memberships its user gains later.
    # NULL only for a token issued before tokens were bound whose user was in several tenants
    # (or none): such a token is refused (migration execution.0017).
    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=TOKEN_NAME_MAX)
    # hex SHA-256 of the key; the lookup of every token-authenticated request.
    key_hash = models.CharField(max_length=64, unique=True)
    # The key's first characters, to tell tokens apart (never enough to use).
    prefix = models.CharField(max_length=8)
    created_at = models.DateTimeField(auto_now_add=True)
    # Who issued it (the user, a tenant admin); NULL for the system (a command, the demo).
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    # Last use, written at most once a minute per token (a conditional UPDATE at authentication).
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_from = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        db_table = "api_tokens"
        ordering = ["-id"]
        constraints = [
            # A user names each of their tokens of one tenant once (revoke by name).
            models.UniqueConstraint(fields=["user", "tenant", "name"], name="api_tokens_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
