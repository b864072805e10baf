"""API tokens: issue (the key is returned once), revoke (docs/api.md#tokens).

A token is named, bound to one tenant (it reads and acts there only), optionally expiring;
the table holds its SHA-256 only. Who may issue or revoke which token is the policy's
``token_issue``/``token_revoke`` (``execution/policy/``); every door (the members page, the
REST ``tokens/`` endpoints, the admin's token list) calls :func:`api_token_create` or
:func:`api_token_revoke`, which ask it. :func:`api_token_issue` is the bare issue for the
installation's own doors (``manage.py api_token``, the demo seed), which act as the system.
Authentication is in ``token_auth.py``.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from execution import policy
from execution.errors import DomainError
from execution.models import ApiToken, AuditLog, Membership, Tenant
from execution.models.tokens import TOKEN_NAME_MAX


class TokenRefused(DomainError):
    """The token cannot be issued as asked; ``field`` names the input at fault (400)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    key: str  # shown once, never stored


def token_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def token_name_check(name: str) -> str:
    """A name is one line of printable text, 1-100 characters (it is shown in lists and the
    audit, and named by ``opsctl tokens revoke``)."""
    name = name.strip()
    if not name:
        raise TokenRefused("name", "a name is required (what the token is for, e.g. 'ci-pipeline')")
    if len(name) > TOKEN_NAME_MAX:
        raise TokenRefused("name", f"at most {TOKEN_NAME_MAX} characters")
    if any(unicodedata.category(c) in {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"} for c in name):
        raise TokenRefused("name", "printable characters only (no line breaks or control characters)")
    return name


def _expiry_check(expires_at: datetime | None) -> None:
    if expires_at is None:
        return
    if timezone.is_naive(expires_at):
        raise TokenRefused("expires_at", "a time zone is required")
    if expires_at <= timezone.now():
        raise TokenRefused("expires_at", "must be in the future")


@transaction.atomic
def api_token_issue(
    *,
    user: Any,
    tenant: Tenant,
    name: str,
    expires_at: datetime | None = None,
    created_by: Any = None,
    replace: bool = False,
) -> IssuedToken:
    """A new key for ``user`` bound to ``tenant``, returned once (stored hashed). No policy:
    the caller decided (:func:`api_token_create`) or is the installation itself. ``user``
    must be a member of ``tenant``; ``replace`` revokes the user's token of the same name
    there first (a rotation)."""
    name = token_name_check(name)
    _expiry_check(expires_at)
    if not Membership.objects.filter(user_id=user.pk, tenant_id=tenant.pk).exists():
        raise TokenRefused("tenant", f"{user.get_username()!r} is not a member of tenant {tenant.slug!r}")
    if replace:
        ApiToken.objects.filter(user_id=user.pk, tenant_id=tenant.pk, name=name).delete()
    key = secrets.token_hex(20)
    try:
        with transaction.atomic():
            token = ApiToken.objects.create(
                user=user,
                tenant=tenant,
                name=name,
                key_hash=token_hash(key),
                prefix=key[:8],
                expires_at=expires_at,
                created_by=created_by if getattr(created_by, "pk", None) else None,
            )
    except IntegrityError:
        raise TokenRefused(
            "name", f"{user.get_username()!r} has a token named {name!r} in {tenant.slug!r} already"
        ) from None
    return IssuedToken(token=token, key=key)


def api_token_audit(*, token: ApiToken, actor: Any, event_type: str, door: str) -> None:
    """The audit row of an issue or a revocation (never the key)."""
    AuditLog.objects.create(
        tenant_id=token.tenant_id,
        actor=actor if getattr(actor, "pk", None) else None,
        event_type=event_type,
        details={
            "user": token.user.get_username(),
            "token": token.name,
            "prefix": token.prefix,
            "expires_at": token.expires_at.isoformat() if token.expires_at else None,
            "door": door,
        },
    )


def api_token_create(
    *,
    actor: Any,
    tenant: Tenant,
    user: Any,
    name: str,
    expires_at: datetime | None = None,
    door: str,
) -> IssuedToken:
    """``actor`` issues ``user`` (themselves or, for a tenant admin, a member they manage) a
    token bound to ``tenant``. Raises ``policy.RightDenied`` (recorded) or TokenRefused."""
    # Outside the transaction: a refusal's record must outlive its rollback.
    policy.require(actor, policy.Right.TOKEN_ISSUE, tenant=tenant, subject=user, door=door)
    with transaction.atomic():
        issued = api_token_issue(user=user, tenant=tenant, name=name, expires_at=expires_at, created_by=actor)
        api_token_audit(token=issued.token, actor=actor, event_type="token_issued", door=door)
    return issued


def api_token_revoke(*, actor: Any, token: ApiToken, door: str) -> None:
    """Delete ``token`` (its user's own, or any of the tenant's for its admins). A token of
    no tenant (issued before binding, refused anyway) is its owner's or a superuser's."""
    if token.tenant_id is None:
        if not (getattr(actor, "is_superuser", False) or getattr(actor, "pk", None) == token.user_id):
            raise policy.RightDenied(
                policy.Right.TOKEN_REVOKE,
                policy.Decision(
                    False, "only its owner or a superuser revokes an unbound token", "not_member"
                ),
            )
    else:
        policy.require(
            actor, policy.Right.TOKEN_REVOKE, tenant=token.tenant_id, subject=token.user, door=door
        )
    with transaction.atomic():
        ApiToken.objects.filter(pk=token.pk).delete()
        api_token_audit(token=token, actor=actor, event_type="token_revoked", door=door)


def api_tokens_of_tenant(*, tenant: Tenant, user: Any | None = None) -> list[ApiToken]:
    """The tokens bound to ``tenant`` (``user``'s only, when given), newest first."""
    tokens = ApiToken.objects.filter(tenant=tenant).select_related("user", "created_by")
    if user is not None:
        tokens = tokens.filter(user_id=user.pk)
    return list(tokens.order_by("user__username", "-created_at", "-id"))
