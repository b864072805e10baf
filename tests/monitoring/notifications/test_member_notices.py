"""Role grants audited and told to the tenant's other admins (docs/notifications.md#membership-notices),
at every door that grants: the members page, the admin (the membership's page) and the
identity provider's role mapping at sign-in. Sent by the real delivery machinery, received
by Django's test mail outbox."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.test import Client

from execution.enums import Role
from execution.models import AuditLog, Membership
from monitoring.notifications.deliver import deliveries_send_due
from monitoring.notifications.models import NotificationDelivery
from opsconductor.oidc_roles import oidc_memberships_sync
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def _browser(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admins(tenant: Any) -> dict[str, Any]:
    """Two admins of the tenant with e-mail addresses (staff, for the admin), and one without."""
    made = {}
    for name, email in (("alice", "alice@example.test"), ("bert", "bert@example.test"), ("carol", "")):
        user = UserFactory(username=name, email=email, is_staff=True)
        MembershipFactory(tenant=tenant, user=user, role=Role.ADMIN)
        made[name] = user
    return made


def _sent_to(delivery: NotificationDelivery) -> list[str]:
    mail.outbox.clear()
    assert deliveries_send_due(budget_seconds=10) >= 1
    assert NotificationDelivery.objects.get(pk=delivery.pk).status == "delivered"
    [message] = mail.outbox
    return sorted(message.recipients())


def test_a_role_granted_on_the_members_page_is_audited_and_mailed_to_the_other_admins(
    tenant: Any, admins: dict[str, Any], viewer: Any
) -> None:
    membership = Membership.objects.get(tenant=tenant, user=viewer)
    answer = _browser(admins["alice"]).post(
        f"/tenants/{tenant.slug}/members/",
        {"action": "role", "membership": membership.pk, "role": "approver"},
    )
    assert answer.status_code == 302
    audit = AuditLog.objects.get(event_type="member_role_changed")
    assert audit.actor == admins["alice"] and audit.details["to"] == "approver"
    delivery = NotificationDelivery.objects.get(audit_id=audit.pk)
    assert delivery.kind == "role_granted" and delivery.tenant == tenant
    assert "alice changed the role of vic-viewer from viewer to approver" in delivery.subject
    # Not the admin who did it, not one without an address: bert.
    assert _sent_to(delivery) == ["bert@example.test"]


def test_a_member_added_on_the_members_page_is_mailed_too(tenant: Any, admins: dict[str, Any]) -> None:
    answer = _browser(admins["bert"]).post(
        f"/tenants/{tenant.slug}/members/",
        {"action": "add", "username": "newbie", "role": "admin", "password": "long-enough-1"},
    )
    assert answer.status_code == 302
    audit = AuditLog.objects.get(event_type="member_added")
    delivery = NotificationDelivery.objects.get(audit_id=audit.pk)
    assert "bert added newbie as admin" in delivery.subject
    assert _sent_to(delivery) == ["alice@example.test"]


def test_a_role_changed_in_the_admin_goes_through_the_service(
    tenant: Any, admins: dict[str, Any], viewer: Any
) -> None:
    """The admin saved memberships itself: no audit row, no notice, no role start."""
    membership = Membership.objects.get(tenant=tenant, user=viewer)
    before = membership.role_since
    answer = _browser(admins["alice"]).post(
        f"/admin/execution/membership/{membership.pk}/change/", {"role": "approver"}
    )
    assert answer.status_code == 302
    membership.refresh_from_db()
    assert membership.role == Role.APPROVER and membership.role_since > before
    audit = AuditLog.objects.get(event_type="member_role_changed")
    assert audit.actor == admins["alice"] and audit.details["door"] == "admin"
    assert _sent_to(NotificationDelivery.objects.get(audit_id=audit.pk)) == ["bert@example.test"]


def test_a_member_added_in_the_admin_goes_through_the_service(tenant: Any, admins: dict[str, Any]) -> None:
    newcomer = UserFactory(username="newcomer")
    answer = _browser(admins["alice"]).post(
        "/admin/execution/membership/add/", {"tenant": tenant.pk, "user": newcomer.pk, "role": "admin"}
    )
    assert answer.status_code == 302
    audit = AuditLog.objects.get(event_type="member_added")
    assert audit.details == {"user": "newcomer", "role": "admin", "created": False, "door": "admin"}
    assert _sent_to(NotificationDelivery.objects.get(audit_id=audit.pk)) == ["bert@example.test"]


def test_the_last_admin_cannot_be_demoted_in_the_admin_either(tenant: Any) -> None:
    solo = UserFactory(username="solo", is_staff=True)
    membership = MembershipFactory(tenant=tenant, user=solo, role=Role.ADMIN)
    answer = _browser(solo).post(f"/admin/execution/membership/{membership.pk}/change/", {"role": "viewer"})
    assert answer.status_code == 400 and "at least one admin" in answer.content.decode()
    assert Membership.objects.get(pk=membership.pk).role == Role.ADMIN
    assert not AuditLog.objects.filter(event_type="member_role_changed").exists()


def test_a_role_granted_by_the_identity_provider_is_mailed_to_the_admins(
    tenant: Any, admins: dict[str, Any], settings: Any
) -> None:
    settings.OIDC_ROLES_CLAIM = "groups"
    sso = UserFactory(username="sso-user")
    oidc_memberships_sync(
        user=sso, claims={"sub": "s1", "groups": ["ops:acme:approver"]}, issuer="https://idp"
    )
    audit = AuditLog.objects.get(event_type="member_added")
    delivery = NotificationDelivery.objects.get(audit_id=audit.pk)
    assert "the system (oidc) added sso-user as approver" in delivery.subject
    assert _sent_to(delivery) == ["alice@example.test", "bert@example.test"]


def test_nobody_to_tell_records_no_notice_and_the_deliveries_list_shows_a_notice(
    tenant: Any, admins: dict[str, Any], viewer: Any
) -> None:
    membership = Membership.objects.get(tenant=tenant, user=viewer)
    _browser(admins["alice"]).post(
        f"/tenants/{tenant.slug}/members/",
        {"action": "role", "membership": membership.pk, "role": "operator"},
    )
    page = _browser(admins["alice"]).get("/notifications/")
    assert page.status_code == 200 and "role_granted" in page.content.decode()
    Membership.objects.filter(user=admins["bert"]).delete()
    _browser(admins["alice"]).post(
        f"/tenants/{tenant.slug}/members/", {"action": "role", "membership": membership.pk, "role": "viewer"}
    )
    assert AuditLog.objects.filter(event_type="member_role_changed").count() == 2
    assert NotificationDelivery.objects.count() == 1  # carol has no address, alice did it
