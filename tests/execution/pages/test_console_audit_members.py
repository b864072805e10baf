"""``/audit/`` (who did what, filterable) and tenant admins managing members, roles and tokens
without being superusers -- never another tenant's (docs/contract.md#operator-console)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from execution.enums import ActorType, ExecutionStatus, Role
from execution.models import AuditLog, ExecutionEvent, Membership, SecretAccess
from execution.services.events import event_record
from execution.services.transition import transition
from tests.factories import ExecutionFactory

pytestmark = pytest.mark.django_db


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _activity(tenant: Any, operator: Any, approver: Any, admin: Any) -> Any:
    execution = ExecutionFactory(
        tenant=tenant, actor=operator, plan_snapshot={"name": "patch kernel", "steps": []}
    )
    event_record(execution=execution, event_type="created", actor=operator, actor_type=ActorType.USER)
    event_record(
        execution=execution,
        event_type="approval_vote",
        actor=approver,
        actor_type=ActorType.USER,
        details={"voter": approver.username, "decision": "approve", "comment": "fine by me"},
    )
    event_record(
        execution=execution, event_type="cancel_requested", actor=operator, actor_type=ActorType.USER
    )
    event_record(execution=execution, event_type="requeued", actor=admin, actor_type=ActorType.USER)
    SecretAccess.objects.create(  # what the worker writes for every resolution
        tenant=tenant,
        actor=operator,
        execution_id=execution.execution_id,
        step_index=0,
        path="db:acme/deploy-token",
    )
    AuditLog.objects.create(
        tenant=tenant, actor=operator, event_type="rbac_violation", reason="prod deploy denied"
    )
    event_record(execution=execution, event_type="step_output", details={"text": "noise"})
    return execution


def test_audit_lists_who_did_what(tenant: Any, operator: Any, approver: Any, tenant_admin: Any) -> None:
    _activity(tenant, operator, approver, tenant_admin)
    body = _client(operator).get("/audit/").content.decode()
    for kind in ("submission", "vote", "cancel", "requeue", "secret", "denial"):
        assert f'data-kind="{kind}"' in body, kind
    assert "fine by me" in body and "prod deploy denied" in body and "db:acme/deploy-token" in body
    assert "patch kernel" in body and "step_output" not in body


def test_audit_filters_by_actor_kind_and_date(
    tenant: Any, operator: Any, approver: Any, tenant_admin: Any
) -> None:
    _activity(tenant, operator, approver, tenant_admin)
    client = _client(operator)
    by_approver = client.get(f"/audit/?actor={approver.username}").content.decode()
    assert by_approver.count("<tr data-kind=") == 1 and 'data-kind="vote"' in by_approver
    denials = client.get("/audit/?kind=denial").content.decode()
    assert denials.count("<tr data-kind=") == 1
    secrets = client.get("/audit/?kind=secret").content.decode()
    assert secrets.count("<tr data-kind=") == 1 and "db:acme/deploy-token" in secrets
    assert client.get("/audit/?kind=vote").content.decode().count("db:acme") == 0
    tomorrow = (timezone.now() + dt.timedelta(days=1)).date().isoformat()
    assert client.get(f"/audit/?from={tomorrow}").content.decode().count("<tr data-kind=") == 0
    assert client.get("/audit/?kind=gossip").status_code == 400
    assert "from:" in client.get("/audit/?from=soon").content.decode()


def test_audit_never_shows_another_tenants_activity(
    tenant: Any, operator: Any, approver: Any, tenant_admin: Any, outsider: Any
) -> None:
    _activity(tenant, operator, approver, tenant_admin)
    body = _client(outsider).get("/audit/").content.decode()
    assert "<tr data-kind=" not in body


def test_audit_pages(tenant: Any, operator: Any) -> None:
    execution = ExecutionFactory(tenant=tenant, actor=operator)
    ExecutionEvent.objects.bulk_create(
        ExecutionEvent(execution=execution, tenant_id=tenant.pk, event_type="created", actor=operator)
        for _ in range(60)
    )
    first = _client(operator).get("/audit/").content.decode()
    assert first.count("<tr data-kind=") == 50 and "page=2" in first
    assert _client(operator).get("/audit/?page=2").content.decode().count("<tr data-kind=") == 10


def test_tenant_admin_manages_members_and_roles(tenant: Any, tenant_admin: Any, viewer: Any) -> None:
    client = _client(tenant_admin)
    page = client.get(f"/tenants/{tenant.slug}/members/").content.decode()
    assert 'id="add-member"' in page and "vic-viewer" in page
    client.post(
        f"/tenants/{tenant.slug}/members/",
        {"action": "add", "username": "newbie", "role": "operator", "password": "long-enough-1"},
    )
    assert Membership.objects.get(tenant=tenant, user__username="newbie").role == Role.OPERATOR
    assert Client().login(username="newbie", password="long-enough-1")
    membership = Membership.objects.get(tenant=tenant, user=viewer)
    client.post(
        f"/tenants/{tenant.slug}/members/",
        {"action": "role", "membership": membership.pk, "role": "approver"},
    )
    assert Membership.objects.get(pk=membership.pk).role == Role.APPROVER
    client.post(f"/tenants/{tenant.slug}/members/", {"action": "remove", "membership": membership.pk})
    assert not Membership.objects.filter(pk=membership.pk).exists()
    kinds = set(AuditLog.objects.filter(tenant=tenant).values_list("event_type", flat=True))
    assert kinds == {"member_added", "member_role_changed", "member_removed"}
    assert 'data-kind="membership"' in client.get("/audit/?kind=membership").content.decode()


def test_the_last_admin_stays(tenant: Any, tenant_admin: Any) -> None:
    own = Membership.objects.get(user=tenant_admin)
    response = _client(tenant_admin).post(
        f"/tenants/{tenant.slug}/members/", {"action": "role", "membership": own.pk, "role": "viewer"}
    )
    assert response.status_code == 400 and "at least one admin" in response.content.decode()
    assert Membership.objects.get(pk=own.pk).role == Role.ADMIN


def test_non_admins_and_other_tenants_cannot_manage(
    tenant: Any, operator: Any, outsider: Any, viewer: Any
) -> None:
    url = f"/tenants/{tenant.slug}/members/"
    membership = Membership.objects.get(user=viewer)
    response = _client(operator).post(url, {"action": "role", "membership": membership.pk, "role": "admin"})
    assert response.status_code == 403
    assert _client(outsider).get(url).status_code == 404
    assert _client(outsider).post(url, {"action": "remove", "membership": membership.pk}).status_code == 404
    # An admin of another tenant cannot reach this tenant's membership through their own page.
    other_url = f"/tenants/{outsider.memberships.get().tenant.slug}/members/"
    response = _client(outsider).post(other_url, {"action": "remove", "membership": membership.pk})
    assert response.status_code == 400
    assert Membership.objects.get(pk=membership.pk).role == Role.VIEWER


def test_the_tenant_admin_sees_an_audit_of_a_cancel(tenant: Any, tenant_admin: Any, operator: Any) -> None:
    execution = ExecutionFactory(tenant=tenant, actor=operator)
    transition(execution, ExecutionStatus.CANCELLED, actor=operator, actor_type=ActorType.USER, reason="oops")
    body = _client(tenant_admin).get("/audit/?kind=cancel").content.decode()
    assert body.count("<tr data-kind=") == 1 and "oops" in body
