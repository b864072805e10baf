"""API tokens (docs/contract.md#secrets-and-masking: stored hashed). The key is shown once when issued; the
row keeps its
SHA-256 only, so a database dump gives no usable token."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ApiToken(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    # hex SHA-256 of the key; the lookup of every token-authenticated request.
    key_hash = models.CharField(max_length=64, unique=True)
    # The key's first characters, to tell tokens apart in the admin (never enough to use).
    prefix = models.CharField(max_length=8)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "api_tokens"
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user_id})"
