"""``?token=<key>`` authentication for WebSockets (API tokens, looked up by hash), inside
AuthMiddlewareStack.

Browsers use the session cookie (AuthMiddlewareStack in opsconductor/asgi.py); API clients,
which cannot set headers on a WebSocket handshake from every library, pass their token in
the query string. A token, when given, wins over the cookie; a bad token is anonymous.
A cookie-authenticated handshake from another site's page (an ``Origin`` that is neither this
host nor in ``CSRF_TRUSTED_ORIGINS``) is anonymous too: cross-site WebSocket hijacking.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.models import AnonymousUser


@database_sync_to_async
def _user_for_token(key: str, address: str) -> Any:
    """The key's user, bound to the token's tenant (every subscribe is decided there only);
    anonymous for a wrong, expired or unbound key, and for any key from an address past its
    wrong-key limit (the same count as the REST token authentication)."""
    from execution.services.token_auth import api_token_check, token_failure_record, token_failures_exceeded

    if token_failures_exceeded(address=address):
        return AnonymousUser()
    check = api_token_check(key=key, address=address)
    if check.token is None:
        if check.guess:
            token_failure_record(address=address)
        return AnonymousUser()
    return check.user


class TokenAuthMiddleware:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        keys = query.get("token")
        if keys:
            client = scope.get("client") or ("", 0)
            scope = dict(scope, user=await _user_for_token(keys[0], str(client[0])))
        elif not _same_origin(scope):
            scope = dict(scope, user=AnonymousUser())
        return await self.inner(scope, receive, send)


def _same_origin(scope: dict[str, Any]) -> bool:
    headers = dict(scope.get("headers", []))
    origin = headers.get(b"origin", b"").decode("latin-1")
    if not origin:
        return True  # not a browser: nothing to forge
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    return urlsplit(origin).netloc == headers.get(b"host", b"").decode("latin-1")
