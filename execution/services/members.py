"""Tenant membership, managed by the tenant's admins (docs/contract.md#members-and-tokens).

Every change is one audit-log row in the same transaction; a member added or a role
changed is also e-mailed to the tenant's other admins (monitoring/notifications/notices.py).
A tenant keeps at least one admin. Who may be added is the policy's ``manage_members`` with
the account as its subject: a tenant admin adds new accounts and accounts whose memberships
are all in tenants they administer, never a staff user, a superuser or another tenant's
member (a superuser does).
``actor`` None is the system (a command, the demo, sign-in by an identity provider): no
policy is asked. Removing a member revokes their tokens bound to that tenant.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from execution import policy
from execution.enums import Role
from execution.errors import DomainError
from execution.models import ApiToken, AuditLog, Membership, Tenant
from execution.services.users import UserRefused, user_create, username_check

VOTING_ROLES = policy.ROLE_RIGHTS[policy.Right.VOTE]


class MemberChangeRefused(DomainError):
    """The change would break a rule (last admin, unknown user, ...); nothing changed."""


def username_check_or_refuse(username: str) -> None:
    try:
        username_check(username)
    except UserRefused as refused:
        raise MemberChangeRefused(str(refused)) from None


def _audit(*, tenant: Tenant, actor: Any, event_type: str, details: dict[str, Any]) -> AuditLog:
    return AuditLog.objects.create(
        tenant=tenant,
        actor=actor if getattr(actor, "pk", None) else None,
        event_type=event_type,
        details=details,
    )


def _notify(*, audit: AuditLog, tenant: Tenant, actor: Any, subject: Any) -> None:
    """A grant or change of a role is told to the tenant's other admins, in the transaction
    that makes it (docs/notifications.md#membership-notices)."""
    from monitoring.notifications.notices import member_change_notify  # monitoring builds on execution

    member_change_notify(audit=audit, tenant=tenant, actor=actor, subject=subject)


def _require(actor: Any, tenant: Tenant, door: str, subject: Any = None) -> None:
    if actor is not None:
        policy.require(actor, policy.Right.MANAGE_MEMBERS, tenant=tenant, subject=subject, door=door)


def _keeps_an_admin(*, tenant: Tenant, without_user_id: int) -> bool:
    return Membership.objects.filter(tenant=tenant, role=Role.ADMIN).exclude(user_id=without_user_id).exists()


def membership_add(
    *, tenant: Tenant, actor: Any, username: str, role: str, password: str = "", door: str
) -> Membership:
    """Add ``username`` to ``tenant`` in ``role``; a new user is created when a password is
    given. Raises MemberChangeRefused (400) or ``policy.RightDenied`` (recorded)."""
    if role not in Role.values:
        raise MemberChangeRefused(f"role: unknown role {role!r}")
    existing = get_user_model().objects.filter(username=username).first()
    # Outside the transaction: the record of a refused subject must outlive the rollback.
    _require(actor, tenant, door, subject=existing)
    with transaction.atomic():
        user = existing
        if user is None:
            if not password:
                username_check_or_refuse(username)
                raise MemberChangeRefused(f"username: no user {username!r}; give a password to create one")
            try:
                user = user_create(username=username, password=password)
            except UserRefused as refused:
                raise MemberChangeRefused(str(refused)) from None
        membership, created = Membership.objects.get_or_create(
            tenant=tenant, user=user, defaults={"role": role}
        )
        if not created:
            raise MemberChangeRefused(f"username: {username!r} is already a member ({membership.role})")
        audit = _audit(
            tenant=tenant,
            actor=actor,
            event_type="member_added",
            details={"user": username, "role": role, "created": existing is None, "door": door},
        )
        _notify(audit=audit, tenant=tenant, actor=actor, subject=user)
    return membership


def _locked(membership: Membership) -> Membership:
    locked = (
        Membership.objects.select_for_update(of=("self",))
        .select_related("tenant", "user")
        .get(pk=membership.pk)
    )
    # The tenant's admin rows locked: two admins demoting or removing each other cannot both succeed.
    list(Membership.objects.select_for_update().filter(tenant=locked.tenant, role=Role.ADMIN))
    return locked


def membership_set_role(*, membership: Membership, actor: Any, role: str, door: str) -> Membership:
    if role not in Role.values:
        raise MemberChangeRefused(f"role: unknown role {role!r}")
    _require(actor, membership.tenant, door)
    with transaction.atomic():
        locked = _locked(membership)
        if (
            locked.role == Role.ADMIN
            and role != Role.ADMIN
            and not _keeps_an_admin(tenant=locked.tenant, without_user_id=locked.user_id)
        ):
            raise MemberChangeRefused("role: the tenant must keep at least one admin")
        before, locked.role = locked.role, role
        if not (before in VOTING_ROLES and role in VOTING_ROLES):
            # Four eyes: a new role counts from now (approver <-> admin: both voted already).
            locked.role_since = timezone.now()
        locked.save(update_fields=["role", "role_since"])
        audit = _audit(
            tenant=locked.tenant,
            actor=actor,
            event_type="member_role_changed",
            details={"user": locked.user.get_username(), "from": before, "to": role, "door": door},
        )
        _notify(audit=audit, tenant=locked.tenant, actor=actor, subject=locked.user)
    return locked


def membership_set_on_behalf(*, membership: Membership, actor: Any, allowed: bool, door: str) -> Membership:
    """Grant or take away submitting on behalf of other members: a superuser's act only
    (``actor`` None: the system). Audited; raises ``policy.RightDenied`` (recorded)."""
    refusal = policy.on_behalf_refusal(actor) if actor is not None else ""
    if refusal:
        policy.rbac_audit(
            tenant=membership.tenant,
            actor=actor,
            reason=refusal,
            details={"right": "manage_members", "door": door, "user": membership.user.get_username()},
        )
        raise policy.RightDenied(policy.Right.MANAGE_MEMBERS, policy.Decision(False, refusal, "on_behalf"))
    with transaction.atomic():
        locked = _locked(membership)
        if locked.can_submit_on_behalf == allowed:
            return locked
        locked.can_submit_on_behalf = allowed
        locked.save(update_fields=["can_submit_on_behalf"])
        _audit(
            tenant=locked.tenant,
            actor=actor,
            event_type="member_on_behalf_changed",
            details={"user": locked.user.get_username(), "can_submit_on_behalf": allowed, "door": door},
        )
    return locked


def membership_remove(*, membership: Membership, actor: Any, door: str) -> None:
    """Remove the membership and revoke the user's tokens bound to its tenant (a token
    outliving the membership would work again the day the user is added back)."""
    _require(actor, membership.tenant, door)
    with transaction.atomic():
        locked = _locked(membership)
        if locked.role == Role.ADMIN and not _keeps_an_admin(
            tenant=locked.tenant, without_user_id=locked.user_id
        ):
            raise MemberChangeRefused("the tenant must keep at least one admin")
        revoked = sorted(
            ApiToken.objects.filter(user_id=locked.user_id, tenant_id=locked.tenant_id).values_list(
                "name", flat=True
            )
        )
        ApiToken.objects.filter(user_id=locked.user_id, tenant_id=locked.tenant_id).delete()
        locked.delete()
        _audit(
            tenant=locked.tenant,
            actor=actor,
            event_type="member_removed",
            details={
                "user": locked.user.get_username(),
                "role": locked.role,
                "tokens_revoked": revoked,
                "door": door,
            },
        )
