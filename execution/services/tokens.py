"""API tokens: issue (the key is returned once), authenticate by hash, revoke.

The ``Authorization: Token <key>`` header and the WebSocket ``?token=<key>`` carry the key;
the table holds its SHA-256 only (docs/api.md#tokens).
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.db import transaction
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from execution.models import ApiToken


def token_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


@transaction.atomic
def api_token_issue(*, user: Any, rotate: bool = False) -> str:
    """A new key for ``user``, returned once (stored hashed); with ``rotate`` the user's older
    keys stop working."""
    if rotate:
        ApiToken.objects.filter(user=user).delete()
    key = secrets.token_hex(20)
    ApiToken.objects.create(user=user, key_hash=token_hash(key), prefix=key[:8])
    return key


def api_token_user(*, key: str) -> Any:
    """The active user a key belongs to, or None."""
    if not key or len(key) > 128:
        return None
    token = ApiToken.objects.select_related("user").filter(key_hash=token_hash(key)).first()
    if token is None or not token.user.is_active:
        return None
    return token.user


class HashedTokenAuthentication(TokenAuthentication):
    """DRF's ``Token <key>`` header, looked up by the key's hash."""

    def authenticate_credentials(self, key: str) -> tuple[Any, None]:
        user = api_token_user(key=key)
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        return user, None
