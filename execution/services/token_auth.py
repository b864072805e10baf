"""Authenticating by API token: ``Authorization: Token <key>`` (REST) and ``?token=<key>``
(WebSocket) look the key up by its hash (docs/api.md#tokens).

A usable token is bound to a tenant, not expired, and its user is active. The user object
handed on is marked with the token's binding (``policy.binding``), so every right the
request asks for is decided for the token's tenant only. Last use (time and address) is
written at most once a minute per token, by a conditional UPDATE inside the lookup's own
statement: authentication is one round trip whether or not it writes.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.db.models import Q
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.request import Request

from execution.models import ApiToken
from execution.policy.binding import token_bind
from execution.services.tokens import token_hash

LAST_USE_EVERY = timedelta(minutes=1)
FAILURE_WINDOW_SECONDS = 60
MAX_KEY_LENGTH = 128


@dataclass(frozen=True)
class TokenCheck:
    """What a key is worth: ``user`` (bound) and ``token`` when usable, else a ``refusal``
    in words; ``guess`` when the key matches no token (counted against the address)."""

    user: Any = None
    token: ApiToken | None = None
    refusal: str = ""
    guess: bool = False


def _address(raw: str) -> str | None:
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        return None  # a unix socket, a test client without an address


def _columns(model: Any, alias: str) -> list[tuple[str, str]]:
    """(attname, "alias.column AS alias_attname") for each concrete field of ``model``."""
    quote = connection.ops.quote_name
    return [
        (f.attname, f"{alias}.{quote(f.column)} AS {quote(alias + '_' + f.attname)}")
        for f in model._meta.concrete_fields
    ]


@functools.cache
def _lookup_sql() -> tuple[str, list[str], list[str]]:
    token_columns = _columns(ApiToken, "t")
    user_model = get_user_model()
    user_columns = _columns(user_model, "u")
    quote = connection.ops.quote_name
    # One round trip per request: the token, its user and, when the stored last use is
    # older than a minute (and the token usable), the last-use write. Of concurrent requests
    # of one token the UPDATE's WHERE is re-checked on the newest row version, so one writes.
    # Only quoted column and table names from the models are formatted in; values are parameters.
    users, user_pk = quote(user_model._meta.db_table), quote(user_model._meta.pk.column)
    sql = f"""
WITH hit AS (
    SELECT {", ".join(c for _, c in token_columns + user_columns)}
    FROM api_tokens t JOIN {users} u ON u.{user_pk} = t.user_id
    WHERE t.key_hash = %(hash)s
),
touched AS (
    UPDATE api_tokens SET last_used_at = statement_timestamp(), last_used_from = %(address)s::inet
    FROM hit
    WHERE api_tokens.id = hit.t_id AND hit.u_is_active AND api_tokens.tenant_id IS NOT NULL
      AND (api_tokens.expires_at IS NULL OR api_tokens.expires_at > statement_timestamp())
      AND (api_tokens.last_used_at IS NULL
           OR api_tokens.last_used_at < statement_timestamp() - make_interval(secs => %(every)s))
    RETURNING api_tokens.last_used_at, host(api_tokens.last_used_from)
)
SELECT hit.*, touched.* FROM hit LEFT JOIN touched ON true
"""  # noqa: S608 - quoted model names only
    return sql, [a for a, _ in token_columns], [a for a, _ in user_columns]


def _lookup(key: str, address: str) -> ApiToken | None:
    """The token of ``key`` with its user loaded (and its last use recorded when due)."""
    sql, token_fields, user_fields = _lookup_sql()
    params = {"hash": token_hash(key), "address": _address(address), "every": LAST_USE_EVERY.total_seconds()}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(token_fields)
    token = ApiToken.from_db(connection.alias, token_fields, row[:split])
    token.user = get_user_model().from_db(
        connection.alias, user_fields, row[split : split + len(user_fields)]
    )
    touched_at, touched_from = row[-2:]
    if touched_at is not None:
        token.last_used_at, token.last_used_from = touched_at, touched_from
    return token


def api_token_check(*, key: str, address: str) -> TokenCheck:
    """Look ``key`` up; on success record its use and bind the user to the token's tenant."""
    if not key or len(key) > MAX_KEY_LENGTH:
        return TokenCheck(refusal="Invalid token.", guess=True)
    token = _lookup(key, address)
    if token is None or not token.user.is_active:
        return TokenCheck(refusal="Invalid token.", guess=True)
    if token.tenant_id is None:
        return TokenCheck(
            refusal="This API token was issued before tokens were bound to one tenant and its user "
            "is in several tenants (or none): issue a new token in the tenant it is for."
        )
    if token.expires_at is not None and token.expires_at <= timezone.now():
        return TokenCheck(refusal=f"This API token expired at {token.expires_at.isoformat()}.")
    user = token_bind(token.user, token_pk=token.pk, tenant_id=token.tenant_id)
    return TokenCheck(user=user, token=token)


def api_token_alive(*, token_pk: int) -> bool:
    """Whether the token still exists, has not expired and its user is active (an open
    socket's periodic re-check)."""
    return (
        ApiToken.objects.filter(pk=token_pk, user__is_active=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
        .exists()
    )


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
    API_TOKEN_FAILURE_LIMIT a minute the address gets 429 without a lookup, right key or not.
    An expired or unbound token is a 401 that says so (not counted: it was no guess).
    ``request.auth`` is the ``ApiToken``."""

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        self._address = str(request.META.get("REMOTE_ADDR") or "")
        return super().authenticate(request)  # type: ignore[return-value]

    def authenticate_credentials(self, key: str) -> tuple[Any, ApiToken]:
        address = getattr(self, "_address", "")
        if token_failures_exceeded(address=address):
            raise exceptions.Throttled(FAILURE_WINDOW_SECONDS, "Too many wrong API tokens from this address.")
        check = api_token_check(key=key, address=address)
        if check.token is None:
            if check.guess:
                token_failure_record(address=address)
            raise exceptions.AuthenticationFailed(check.refusal)
        return check.user, check.token
