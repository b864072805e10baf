"""Claims to memberships, without a browser: the pattern, the stronger role, and what the
members service refuses (the tenant's last admin) staying as it is, recorded."""

from __future__ import annotations

from typing import Any

from execution.enums import Role
from execution.models import AuditLog, Membership
from opsconductor.oidc_roles import claimed_memberships, oidc_memberships_sync
from tests.factories import MembershipFactory, TenantFactory, UserFactory


def test_only_values_matching_the_pattern_with_a_known_role_count(settings: Any) -> None:
    settings.OIDC_ROLES_CLAIM = "groups"
    wanted, ignored = claimed_memberships(
        {
            "groups": [
                "ops:acme:viewer",
                "ops:acme:deployer",
                "ops:acme:operator",
                "ops:b:root",
                "xops:c:admin",
                7,
            ]
        }
    )
    assert wanted == {"acme": "deployer"}
    assert ignored == ["ops:b:root", "xops:c:admin"]
    assert claimed_memberships({"groups": "ops:solo:admin"})[0] == {"solo": "admin"}
    assert claimed_memberships({})[0] == {}
    settings.OIDC_ROLES_PATTERN = r"(?P<tenant>\w+)-(?P<role>\w+)"
    assert claimed_memberships({"groups": ["acme-approver"]})[0] == {"acme": "approver"}


def test_the_last_admin_is_kept_and_the_refusal_recorded(db: Any) -> None:
    acme = TenantFactory(slug="acme")
    user = UserFactory(username="sso-admin")
    MembershipFactory(tenant=acme, user=user, role=Role.ADMIN)
    summary = oidc_memberships_sync(user=user, claims={"sub": "s1", "groups": []}, issuer="https://idp")
    assert summary["removed"] == [] and "at least one admin" in summary["refused"]["acme"]
    assert Membership.objects.get(user=user).role == Role.ADMIN
    row = AuditLog.objects.get(event_type="oidc_login")
    assert row.actor == user and row.details["refused"] == summary["refused"]
