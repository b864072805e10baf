"""Claims to memberships at each single sign-on login (docs/oidc.md).

``OIDC_ROLES_CLAIM`` (a list of strings, or one string) is matched against
``OIDC_ROLES_PATTERN``, a regular expression with the named groups ``tenant`` and ``role``
(default ``ops:<tenant>:<role>``). The matches are the person's memberships, and only
those: a missing one is added, a different role changed, a membership no claim names any
more removed, each through the members service, which audits it. Values that do not match,
unknown tenants and unknown roles are ignored (and listed in the login's audit row). Two
roles in one tenant: the stronger one (admin, deployer, approver, operator, viewer).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.conf import settings

from execution.enums import Role
from execution.models import AuditLog, Membership, Tenant
from execution.services.members import (
    MemberChangeRefused,
    membership_add,
    membership_remove,
    membership_set_role,
)

logger = logging.getLogger(__name__)
STRENGTH = [Role.ADMIN, Role.DEPLOYER, Role.APPROVER, Role.OPERATOR, Role.VIEWER]


def claimed_memberships(claims: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """({tenant slug: role}, ignored values) from the roles claim."""
    raw = claims.get(settings.OIDC_ROLES_CLAIM) or []
    values = (
        [raw]
        if isinstance(raw, str)
        else [v for v in raw if isinstance(v, str)]
        if isinstance(raw, list)
        else []
    )
    pattern = re.compile(settings.OIDC_ROLES_PATTERN)
    wanted: dict[str, str] = {}
    ignored: list[str] = []
    for value in values:
        match = pattern.fullmatch(value)
        role = match.group("role") if match else ""
        if not match or role not in Role.values:
            ignored.append(value)
            continue
        tenant = match.group("tenant")
        current = wanted.get(tenant)
        if current is None or STRENGTH.index(Role(role)) < STRENGTH.index(Role(current)):
            wanted[tenant] = role
    return wanted, ignored


def oidc_memberships_sync(*, user: Any, claims: dict[str, Any], issuer: str) -> dict[str, Any]:
    """Make ``user``'s memberships what the claims say; returns (and audits) what changed."""
    wanted, ignored = claimed_memberships(claims)
    tenants = {t.slug: t for t in Tenant.objects.filter(slug__in=wanted)}
    unknown = sorted(set(wanted) - set(tenants))
    current = {
        m.tenant.slug: m for m in Membership.objects.filter(user=user).select_related("tenant", "user")
    }
    summary: dict[str, Any] = {"added": {}, "changed": {}, "removed": [], "refused": {}}
    for slug, role in sorted(wanted.items()):
        if slug not in tenants:
            continue
        try:
            if slug not in current:
                membership_add(
                    tenant=tenants[slug], actor=None, username=user.get_username(), role=role, door="oidc"
                )
                summary["added"][slug] = role
            elif current[slug].role != role:
                membership_set_role(membership=current[slug], actor=None, role=role, door="oidc")
                summary["changed"][slug] = role
        except MemberChangeRefused as refused:
            summary["refused"][slug] = str(refused)
    for slug, membership in sorted(current.items()):
        if slug in wanted:
            continue
        try:
            membership_remove(membership=membership, actor=None, door="oidc")
            summary["removed"].append(slug)
        except MemberChangeRefused as refused:  # the tenant's last admin stays
            summary["refused"][slug] = str(refused)
    AuditLog.objects.create(
        actor=user,
        event_type="oidc_login",
        reason=f"single sign-on login of {user.get_username()}",
        details={
            "issuer": issuer,
            "subject": str(claims.get("sub")),
            **summary,
            "unknown_tenants": unknown,
            "ignored": ignored[:50],
        },
    )
    if summary["refused"]:
        logger.warning(
            "OIDC login of %s: membership changes refused: %s", user.get_username(), summary["refused"]
        )
    return summary
