"""Tenant membership and API tokens, managed by the tenant's admins (docs/contract.md#rbac,
docs/contract.md#operator-console).

Every change is one audit-log row in the same transaction. A tenant keeps at least one
admin. Tokens belong to users, not tenants, so a tenant admin may only touch the token of a
user whose every membership is in a tenant that admin administers: never another tenant's.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from execution.enums import Role
from execution.errors import DomainError
from execution.models import ApiToken, AuditLog, Membership, Tenant
from execution.services.tokens import api_token_issue
from execution.services.users import UserRefused, user_create, username_check


class MemberChangeRefused(DomainError):
    """The change would break a rule (last admin, unknown user, ...); nothing changed."""


def username_check_or_refuse(username: str) -> None:
    try:
        username_check(username)
    except UserRefused as refused:
        raise MemberChangeRefused(str(refused)) from None


def _audit(*, tenant: Tenant, actor: Any, event_type: str, details: dict[str, Any]) -> None:
    AuditLog.objects.create(tenant=tenant, actor=actor, event_type=event_type, details=details)


def _keeps_an_admin(*, tenant: Tenant, without_user_id: int) -> bool:
    return Membership.objects.filter(tenant=tenant, role=Role.ADMIN).exclude(user_id=without_user_id).exists()


@transaction.atomic
def membership_add(*, tenant: Tenant, actor: Any, username: str, role: str, password: str = "") -> Membership:
    """Add ``username`` to ``tenant`` in ``role``; a new user is created when a password is given."""
    if role not in Role.values:
        raise MemberChangeRefused(f"role: unknown role {role!r}")
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        if not password:
            username_check_or_refuse(username)
            raise MemberChangeRefused(f"username: no user {username!r}; give a password to create one")
        try:
            user = user_create(username=username, password=password)
        except UserRefused as refused:
            raise MemberChangeRefused(str(refused)) from None
    membership, created = Membership.objects.get_or_create(tenant=tenant, user=user, defaults={"role": role})
    if not created:
        raise MemberChangeRefused(f"username: {username!r} is already a member ({membership.role})")
    _audit(tenant=tenant, actor=actor, event_type="member_added", details={"user": username, "role": role})
    return membership


@transaction.atomic
def membership_set_role(*, membership: Membership, actor: Any, role: str) -> Membership:
    if role not in Role.values:
        raise MemberChangeRefused(f"role: unknown role {role!r}")
    locked = (
        Membership.objects.select_for_update(of=("self",))
        .select_related("tenant", "user")
        .get(pk=membership.pk)
    )
    # The tenant's admin rows locked: two admins demoting each other cannot both succeed.
    list(Membership.objects.select_for_update().filter(tenant=locked.tenant, role=Role.ADMIN))
    if (
        locked.role == Role.ADMIN
        and role != Role.ADMIN
        and not _keeps_an_admin(tenant=locked.tenant, without_user_id=locked.user_id)
    ):
        raise MemberChangeRefused("role: the tenant must keep at least one admin")
    before, locked.role = locked.role, role
    locked.save(update_fields=["role"])
    _audit(
        tenant=locked.tenant,
        actor=actor,
        event_type="member_role_changed",
        details={"user": locked.user.get_username(), "from": before, "to": role},
    )
    return locked


@transaction.atomic
def membership_remove(*, membership: Membership, actor: Any) -> None:
    locked = (
        Membership.objects.select_for_update(of=("self",))
        .select_related("tenant", "user")
        .get(pk=membership.pk)
    )
    # The tenant's admin rows locked: two admins removing each other cannot both succeed.
    list(Membership.objects.select_for_update().filter(tenant=locked.tenant, role=Role.ADMIN))
    if locked.role == Role.ADMIN and not _keeps_an_admin(
        tenant=locked.tenant, without_user_id=locked.user_id
    ):
        raise MemberChangeRefused("the tenant must keep at least one admin")
    locked.delete()
    _audit(
        tenant=locked.tenant,
        actor=actor,
        event_type="member_removed",
        details={"user": locked.user.get_username(), "role": locked.role},
    )


def token_manageable(*, user: Any, admin_tenant_ids: set[int]) -> bool:
    """May an admin of ``admin_tenant_ids`` touch ``user``'s token (all their tenants are theirs)?"""
    tenants = set(Membership.objects.filter(user=user).values_list("tenant_id", flat=True))
    return bool(tenants) and tenants <= admin_tenant_ids


@transaction.atomic
def api_token_rotate(*, tenant: Tenant, actor: Any, user: Any) -> str:
    """Replace ``user``'s API token; returns the new key (shown once)."""
    key = api_token_issue(user=user, rotate=True)
    _audit(tenant=tenant, actor=actor, event_type="token_rotated", details={"user": user.get_username()})
    return key


@transaction.atomic
def api_token_revoke(*, tenant: Tenant, actor: Any, user: Any) -> None:
    ApiToken.objects.filter(user=user).delete()
    _audit(tenant=tenant, actor=actor, event_type="token_revoked", details={"user": user.get_username()})
