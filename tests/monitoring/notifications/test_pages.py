"""/notifications/ and the admin: tenant admins manage their own tenants' subscriptions only."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from execution.enums import Role
from execution.models import AuditLog
from execution.secrets.crypto import decrypt
from monitoring.notifications.models import Channel, Kind, NotificationSubscription
from tests.factories import TenantFactory
from tests.monitoring.notifications.helpers import person, subscribe

pytestmark = pytest.mark.django_db


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_tenant_admin_creates_a_webhook_subscription_and_sees_its_secret_once(tenant: Any) -> None:
    admin = person(tenant, "ann-admin", Role.ADMIN)
    client = _client(admin)
    answer = client.post(
        "/notifications/",
        {
            "tenant": tenant.pk,
            "name": "ops channel",
            "kinds": [Kind.FAILED, Kind.TIMEOUT],
            "channel": Channel.WEBHOOK,
            "destination": "https://hooks.example.test/ops",
            "environment": "prod",
            "is_active": "on",
        },
        follow=True,
    )
    assert answer.status_code == 200
    subscription = NotificationSubscription.objects.get()
    assert (subscription.kinds, subscription.environment, subscription.created_by) == (
        ["failed", "timeout"],
        "prod",
        admin,
    )
    secret = decrypt(subscription.secret_ciphertext)
    assert secret in answer.content.decode()  # shown once, in the message
    page = client.get("/notifications/").content.decode()
    assert "ops channel" in page and secret not in page and subscription.secret_ciphertext not in page


def test_a_bad_subscription_is_a_400_naming_the_field_and_stores_nothing(tenant: Any) -> None:
    client = _client(person(tenant, "ann-admin", Role.ADMIN))
    answer = client.post(
        "/notifications/",
        {
            "tenant": tenant.pk,
            "name": "x",
            "kinds": [Kind.FAILED],
            "channel": Channel.WEBHOOK,
            "destination": "ftp://x",
        },
    )
    assert answer.status_code == 400 and "absolute http(s) URL" in answer.content.decode()
    answer = client.post(
        "/notifications/",
        {
            "tenant": tenant.pk,
            "name": "x",
            "kinds": [Kind.FAILED],
            "channel": Channel.EMAIL,
            "destination": "",
        },
    )
    assert answer.status_code == 400 and "at least one address" in answer.content.decode()
    assert not NotificationSubscription.objects.exists()


def test_members_who_are_not_tenant_admins_are_refused(tenant: Any) -> None:
    for role in (Role.VIEWER, Role.OPERATOR, Role.APPROVER):
        user = person(tenant, f"someone-{role}", role)
        assert _client(user).get("/notifications/").status_code == 403


def test_another_tenants_subscription_is_unknown_and_not_in_the_tenant_choices(tenant: Any) -> None:
    other = TenantFactory(slug="other")
    theirs = subscribe(tenant=other, kinds=[Kind.FAILED], channel=Channel.EMAIL, destination="x@example.test")
    client = _client(person(tenant, "ann-admin", Role.ADMIN))
    assert client.get(f"/notifications/{theirs.pk}/").status_code == 404
    assert client.post(f"/notifications/{theirs.pk}/delete/").status_code == 404
    answer = client.post(
        "/notifications/",
        {
            "tenant": other.pk,
            "name": "x",
            "kinds": [Kind.FAILED],
            "channel": Channel.EMAIL,
            "destination": "a@b.test",
        },
    )
    # Another tenant is unknown (404, like its subscription), and the attempt is recorded.
    assert answer.status_code == 404
    assert NotificationSubscription.objects.filter(tenant=other).count() == 1
    assert AuditLog.objects.filter(tenant=other, event_type="rbac_violation").exists()


def test_the_admin_is_scoped_to_the_staff_tenant_admins_tenants(tenant: Any) -> None:
    other = TenantFactory(slug="other")
    mine = subscribe(
        tenant=tenant, kinds=[Kind.FAILED], channel=Channel.EMAIL, destination="mine@example.test"
    )
    theirs = subscribe(
        tenant=other, kinds=[Kind.FAILED], channel=Channel.EMAIL, destination="theirs@example.test"
    )
    admin = person(tenant, "ann-admin", Role.ADMIN)
    admin.is_staff = True
    admin.save()
    client = _client(admin)
    listing = client.get("/admin/monitoring/notificationsubscription/")
    assert listing.status_code == 200
    assert (
        "mine@example.test" in listing.content.decode()
        and "theirs@example.test" not in listing.content.decode()
    )
    assert client.get(f"/admin/monitoring/notificationsubscription/{mine.pk}/change/").status_code == 200
    assert client.get(f"/admin/monitoring/notificationsubscription/{theirs.pk}/change/").status_code == 404
    assert client.get("/admin/monitoring/notificationdelivery/").status_code == 200
    staff_viewer = person(tenant, "vic-viewer", Role.VIEWER)
    staff_viewer.is_staff = True
    staff_viewer.save()
    assert _client(staff_viewer).get("/admin/monitoring/notificationsubscription/").status_code == 403


def _webhook_form(tenant: Any, **extra: Any) -> dict[str, Any]:
    return {
        "tenant": tenant.pk,
        "name": "ops channel",
        "kinds": [Kind.FAILED],
        "channel": Channel.WEBHOOK,
        "destination": "https://hooks.example.test/ops",
        "environment": "prod",
        "is_active": "on",
        **extra,
    }


def test_a_webhook_off_the_allow_list_is_saved_with_a_warning_that_it_cannot_be_delivered(
    tenant: Any,
) -> None:
    from execution.models import OutboundAllowRule

    client = _client(person(tenant, "ann-admin", Role.ADMIN))
    warned = client.post("/notifications/", _webhook_form(tenant), follow=True).content.decode()
    assert "can never be delivered" in warned and "hooks.example.test" in warned
    assert "not on the outbound allow-list of tenant &#x27;acme&#x27; in prod" in warned
    subscription = NotificationSubscription.objects.get()
    # A rule for another environment does not help this one's deliveries.
    OutboundAllowRule.objects.create(tenant=tenant, host_pattern="hooks.example.test", environment="staging")
    again = client.post(f"/notifications/{subscription.pk}/", _webhook_form(tenant), follow=True)
    assert "can never be delivered" in again.content.decode()
    OutboundAllowRule.objects.create(tenant=tenant, host_pattern="*.example.test", environment="prod")
    listed = client.post(f"/notifications/{subscription.pk}/", _webhook_form(tenant), follow=True)
    assert "saved" in listed.content.decode() and "can never be delivered" not in listed.content.decode()


def test_the_admin_warns_about_a_webhook_off_the_allow_list_too(tenant: Any) -> None:
    admin = person(tenant, "ann-admin", Role.ADMIN)
    admin.is_staff = True
    admin.save()
    answer = _client(admin).post(
        "/admin/monitoring/notificationsubscription/add/", _webhook_form(tenant), follow=True
    )
    assert answer.status_code == 200
    assert NotificationSubscription.objects.filter(name="ops channel").exists()
    assert "can never be delivered" in answer.content.decode()


def test_a_second_subscription_of_the_same_name_is_refused_on_its_name_field(tenant: Any) -> None:
    client = _client(person(tenant, "ann-admin", Role.ADMIN))
    form = {
        "tenant": tenant.pk,
        "name": "on-call",
        "kinds": [Kind.FAILED],
        "channel": Channel.EMAIL,
        "destination": "oncall@example.test",
        "is_active": "on",
    }
    assert client.post("/notifications/", form, follow=True).status_code == 200
    answer = client.post("/notifications/", {**form, "destination": "other@example.test"})
    assert answer.status_code == 400
    errors = answer.context["form"].errors
    assert list(errors) == ["name"] and "already has a subscription named 'on-call'" in errors["name"][0]
    assert NotificationSubscription.objects.filter(name="on-call").count() == 1
    # Another tenant may use the name; editing a subscription keeps its own name.
    other = TenantFactory()
    subscribe(
        tenant=other, kinds=[Kind.FAILED], channel=Channel.EMAIL, destination="x@example.test", name="on-call"
    )
    mine = NotificationSubscription.objects.get(tenant=tenant, name="on-call")
    edited = client.post(
        f"/notifications/{mine.pk}/", {**form, "destination": "new@example.test"}, follow=True
    )
    assert edited.status_code == 200
    mine.refresh_from_db()
    assert mine.destination == "new@example.test"


def test_the_database_refuses_a_duplicate_subscription_name_in_a_tenant(tenant: Any) -> None:
    from django.db import IntegrityError, transaction

    subscribe(
        tenant=tenant, kinds=[Kind.FAILED], channel=Channel.EMAIL, destination="a@example.test", name="dup"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        NotificationSubscription.objects.create(
            tenant=tenant,
            name="dup",
            kinds=[Kind.FAILED],
            channel=Channel.EMAIL,
            destination="b@example.test",
        )
