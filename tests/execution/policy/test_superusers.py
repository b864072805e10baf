"""Superusers act through memberships (docs/contract.md#tenant-administration): on the REST
API, the operator pages, WebSockets and monitoring a superuser without a membership sees no
tenant's executions, delivery bodies, secret accesses or figures; the Django admin is their
all-tenant tool, where each read of a secret or a delivery body is on the tenant's audit trail.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from execution import policy
from execution.enums import Role
from execution.models import AuditLog
from execution.policy import Right
from tests.execution.policy.doors import _subscribe
from tests.execution.realtime.live import run_async
from tests.factories import (
    ExecutionFactory,
    MembershipFactory,
    NotificationDeliveryFactory,
    SecretAccessFactory,
    SecretEntryFactory,
    SlaAlertFactory,
    TenantFactory,
    UserFactory,
    token_for,
)

BRAVO = "bravo-zq"


def _bravo() -> dict[str, Any]:
    """Tenant bravo with a delivery body, a secret access, an SLA alert and an execution."""
    bravo = TenantFactory(slug=BRAVO)
    execution = ExecutionFactory(
        tenant=bravo, plan_snapshot={"name": "bravo-plan", "environment": "dev", "steps": []}
    )
    return {
        "tenant": bravo,
        "execution": execution,
        "delivery": NotificationDeliveryFactory(
            subscription__tenant=bravo,
            subscription__name="bravo-zq-oncall",
            body="bravo-zq delivery body",
            last_error="bravo-zq receiver answered 500",
        ),
        "access": SecretAccessFactory(tenant=bravo, path="db:bravo-zq/deploy-key"),
        "alert": SlaAlertFactory(execution=execution, tenant=bravo),
        "secret": SecretEntryFactory(tenant=bravo, path="bravo-zq/deploy-key"),
    }


def _root() -> Any:
    return UserFactory(username="root", is_superuser=True, is_staff=True)


def _browser(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_a_superuser_without_membership_sees_no_tenant_on_the_pages_and_the_api() -> None:
    _bravo()
    root = _root()
    client = _browser(root)
    notifications = client.get("/notifications/")
    assert notifications.status_code == 403
    assert BRAVO not in notifications.content.decode()
    for url in ("/monitoring/", "/audit/", "/executions/", "/"):
        page = client.get(url)
        assert page.status_code == 200, url
        assert BRAVO not in page.content.decode(), url
    assert client.get(f"/tenants/{BRAVO}/members/").status_code == 404
    api = APIClient()
    api.force_authenticate(root)
    assert api.get("/api/v1/executions/").json()["results"] == []
    assert api.get("/api/v1/metrics/summary").json()["tenants"] == []


@pytest.mark.django_db
def test_a_superuser_sees_a_tenant_through_a_membership_like_anyone() -> None:
    world = _bravo()
    root = _root()
    MembershipFactory(tenant=world["tenant"], user=root, role=Role.ADMIN)
    client = _browser(root)
    assert "bravo-zq receiver answered 500" in client.get("/notifications/").content.decode()
    assert "db:bravo-zq/deploy-key" in client.get("/audit/").content.decode()
    assert BRAVO in client.get("/monitoring/").content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_superuser_without_membership_cannot_watch_a_tenants_stream() -> None:
    _bravo()
    root = _root()
    # A token needs a membership (it is bound to its tenant): the superuser's is of alpha.
    MembershipFactory(tenant=TenantFactory(slug="alpha"), user=root, role=Role.ADMIN)
    token = token_for(root)
    assert run_async(_subscribe(f"/ws/tenants/{BRAVO}/executions/", token)) is False


@pytest.mark.django_db
def test_the_admin_door_alone_gives_a_superuser_every_tenant_and_never_a_vote() -> None:
    bravo = _bravo()["tenant"]
    root = _root()
    for right in (Right.READ, Right.CONFIGURE, Right.SECRET_LIST, Right.MANAGE_MEMBERS, Right.CANCEL):
        assert not policy.decide(root, right, tenant=bravo).allowed, right
        assert policy.decide(root, right, tenant=bravo, door="admin").allowed, right
    for right in (Right.VOTE, Right.SUBMIT):
        assert not policy.decide(root, right, tenant=bravo, door="admin").allowed, right
    assert bravo.pk in policy.tenant_ids_where(root, Right.READ, door="admin")
    assert policy.tenant_ids_where(root, Right.READ) == []


@pytest.mark.django_db
def test_a_superusers_admin_reads_of_secrets_and_delivery_bodies_are_audited() -> None:
    world = _bravo()
    root = _root()
    client = _browser(root)
    listing = client.get("/admin/monitoring/notificationdelivery/").content.decode()
    assert "bravo-zq/" in client.get("/admin/execution/secretentry/").content.decode()
    assert BRAVO in listing
    assert not AuditLog.objects.filter(event_type__startswith="admin_read_").exists()  # lists: no body
    page = client.get(f"/admin/monitoring/notificationdelivery/{world['delivery'].pk}/change/")
    assert "bravo-zq delivery body" in page.content.decode()
    assert client.get(f"/admin/execution/secretentry/{world['secret'].pk}/change/").status_code == 200
    reads = {
        (row.event_type, row.tenant_id, row.actor_id, row.details["object_id"])
        for row in AuditLog.objects.filter(event_type__startswith="admin_read_")
    }
    assert reads == {
        ("admin_read_delivery", world["tenant"].pk, root.pk, str(world["delivery"].pk)),
        ("admin_read_secret", world["tenant"].pk, root.pk, str(world["secret"].pk)),
    }
    # The tenant's own admin sees who looked, on /audit/.
    bravo_admin = UserFactory(username="bob-admin", is_staff=True)
    MembershipFactory(tenant=world["tenant"], user=bravo_admin, role=Role.ADMIN)
    trail = _browser(bravo_admin).get("/audit/", {"kind": "admin_read"}).content.decode()
    assert "root opened secret" in trail and "root opened notification delivery" in trail
    # A tenant admin's own reads are the policy's everyday business: not audited as such.
    _browser(bravo_admin).get(f"/admin/execution/secretentry/{world['secret'].pk}/change/")
    assert AuditLog.objects.filter(event_type__startswith="admin_read_").count() == 2
