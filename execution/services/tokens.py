"""API tokens: issue (the key is returned once), authenticate by hash, revoke.

The ``Authorization: Token <key>`` header and the WebSocket ``?token=<key>`` carry the key;
the table holds its SHA-256 only (docs/api.md#tokens).
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.request import Request

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


FAILURE_WINDOW_SECONDS = 60


def _failures_key(address: str) -> str:
    return f"api-token-failures:{address}"


def token_failures_exceeded(*, address: str) -> bool:
    """Whether ``address`` sent more wrong keys this minute than API_TOKEN_FAILURE_LIMIT."""
    return int(cache.get(_failures_key(address), 0)) >= settings.API_TOKEN_FAILURE_LIMIT


def token_failure_record(*, address: str) -> None:
    key = _failures_key(address)
    if not cache.add(key, 1, FAILURE_WINDOW_SECONDS):
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, FAILURE_WINDOW_SECONDS)


class HashedTokenAuthentication(TokenAuthentication):
    """DRF's ``Token <key>`` header, looked up by the key's hash. Wrong keys are counted per
    address (the cache: Redis with REDIS_URL, so every process shares the count); past
    API_TOKEN_FAILURE_LIMIT a minute the address gets 429 without a lookup, right key or not."""

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        self._address = str(request.META.get("REMOTE_ADDR") or "")
        return super().authenticate(request)  # type: ignore[return-value]

    def authenticate_credentials(self, key: str) -> tuple[Any, None]:
        address = getattr(self, "_address", "")
        if token_failures_exceeded(address=address):
            raise exceptions.Throttled(FAILURE_WINDOW_SECONDS, "Too many wrong API tokens from this address.")
        user = api_token_user(key=key)
        if user is None:
            token_failure_record(address=address)
            raise exceptions.AuthenticationFailed("Invalid token.")
        return user, None
