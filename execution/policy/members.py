"""Whom a tenant admin may manage (docs/contract.md#members-and-tokens): the subject side of
``manage_members`` and ``token_issue``, and its set form for form choices.

A tenant admin manages the accounts whose memberships are all in tenants they administer.
Staff users, superusers and members of any other tenant are out of their reach: adding them,
or issuing them a token, is a superuser's act. A superuser's own tokens are issued by that
superuser alone (not by another superuser, not by a tenant admin).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from execution.enums import Role
from execution.models import Membership


def _admin_tenants(actor: Any) -> QuerySet[Membership]:
    return Membership.objects.filter(user_id=actor.pk, role=Role.ADMIN, user__is_active=True)


def subject_out_of_reach(actor: Any, subject: Any) -> str:
    """Why ``actor`` (not a superuser) may not add or issue tokens for ``subject``; "" when it may."""
    name = subject.get_username()
    if subject.is_superuser or subject.is_staff:
        return f"{name!r} is a staff user or superuser: only a superuser adds them or issues their tokens"
    foreign = (
        Membership.objects.filter(user_id=subject.pk)
        .exclude(tenant_id__in=_admin_tenants(actor).values("tenant_id"))
        .exists()
    )
    if foreign:
        return f"{name!r} is a member of a tenant you do not administer: only a superuser adds them"
    return ""


def on_behalf_refusal(actor: Any) -> str:
    """Why ``actor`` may not grant or take away submitting on behalf of others; "" when they
    may. Only a superuser does: an account that submits for others is half of four eyes."""
    if actor.is_active and actor.is_superuser:
        return ""
    return "only a superuser grants or takes away the right to submit on behalf of other members"


def users_manageable_by(actor: Any) -> QuerySet[Any]:
    """The accounts a form may offer ``actor`` (the set form of :func:`subject_out_of_reach`):
    every account for a superuser; else the non-staff members of the tenants ``actor``
    administers who belong to no other tenant. Accounts without any membership are not
    listed (a form would show every stray name); the members page adds them by name."""
    users = get_user_model().objects.all()
    if actor.is_superuser:
        return users.order_by("username")
    admin_of = _admin_tenants(actor).values("tenant_id")
    return (
        users.filter(is_staff=False, is_superuser=False, memberships__tenant_id__in=admin_of)
        .exclude(pk__in=Membership.objects.exclude(tenant_id__in=admin_of).values("user_id"))
        .distinct()
        .order_by("username")
    )
