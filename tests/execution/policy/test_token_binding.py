"""A token reads and acts in its own tenant only (docs/api.md#tokens), at every door that
authenticates by token: REST, the monitoring summary and WebSocket subscribe; and the
takeover of a superuser (a tenant admin adds one and issues them a token)
is refused at the members page."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from execution import policy
from execution.enums import Role
from execution.models import ApiToken, AuditLog, Membership
from execution.services.members import membership_remove
from tests.execution.policy.doors import execution_make, world_build
from tests.execution.realtime.live import run_async
from tests.factories import ExecutionFactory, MembershipFactory, TenantFactory, UserFactory, token_for

pytestmark = pytest.mark.django_db


def _rest(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def _browser(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_tenant_admin_cannot_add_a_superuser_nor_issue_them_a_token(tenant: Any, tenant_admin: Any) -> None:
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    page = _browser(tenant_admin)
    response = page.post(
        f"/tenants/{tenant.slug}/members/", {"action": "add", "username": "root", "role": "viewer"}
    )
    assert response.status_code == 403 and "only a superuser adds them" in response.content.decode()
    assert not Membership.objects.filter(user=root).exists()
    assert AuditLog.objects.filter(event_type="rbac_violation", actor=tenant_admin).exists()
    # Added by a superuser, the superuser is a member; still no token from the tenant admin.
    MembershipFactory(tenant=tenant, user=root, role=Role.VIEWER)
    response = page.post(
        f"/tenants/{tenant.slug}/members/",
        {"action": "token-issue", "user": root.pk, "name": "takeover"},
    )
    assert response.status_code == 403 and "issued by that superuser alone" in response.content.decode()
    assert not ApiToken.objects.filter(user=root).exists()


def test_a_superusers_token_reads_its_tenant_only(tenant: Any, other_tenant: Any) -> None:
    """Finding 4's token said "tenants": "all"; a token bound to acme says acme."""
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    MembershipFactory(tenant=tenant, user=root, role=Role.ADMIN)
    MembershipFactory(tenant=other_tenant, user=root, role=Role.ADMIN)
    foreign = ExecutionFactory(tenant=other_tenant, actor=root)
    client = _rest(token_for(root, tenant))
    summary = client.get("/api/v1/metrics/summary")
    assert summary.status_code == 200 and summary.json()["tenants"] == ["acme"]
    assert client.get(f"/api/v1/metrics/summary?tenant={other_tenant.slug}").status_code == 404
    assert client.get(f"/api/v1/executions/{foreign.execution_id}/").status_code == 404
    assert client.get("/api/v1/executions/").json()["count"] == 0


def test_a_token_stays_in_its_tenant_whatever_memberships_its_user_gains(
    tenant: Any, other_tenant: Any, operator: Any
) -> None:
    key = token_for(operator, tenant)
    MembershipFactory(tenant=other_tenant, user=operator, role=Role.ADMIN)
    foreign = ExecutionFactory(tenant=other_tenant, actor=operator)
    mine = ExecutionFactory(tenant=tenant, actor=operator)
    client = _rest(key)
    assert client.get(f"/api/v1/executions/{mine.execution_id}/").status_code == 200
    assert client.get(f"/api/v1/executions/{foreign.execution_id}/").status_code == 404
    listed = {row["execution_id"] for row in client.get("/api/v1/executions/").json()["results"]}
    assert listed == {str(mine.execution_id)}
    body = {
        "tenant": other_tenant.slug,
        "plan": {"name": "n", "environment": "dev", "steps": [{"name": "n", "type": "noop"}]},
    }
    refused = client.post("/api/v1/executions/", body, format="json")
    assert refused.status_code == 403 and "not a member of tenant 'other'" in refused.json()["detail"]
    # The session of the same user reaches both tenants: the binding is the token's.
    assert _browser(operator).get(f"/executions/{foreign.execution_id}/").status_code == 200


def test_the_policy_decides_for_the_binding_on_the_user_object(tenant: Any, other_tenant: Any) -> None:
    user = UserFactory(username="two-tenants")
    MembershipFactory(tenant=tenant, user=user, role=Role.ADMIN)
    MembershipFactory(tenant=other_tenant, user=user, role=Role.ADMIN)
    policy.token_bind(user, token_pk=1, tenant_id=tenant.pk)
    assert policy.decide(user, policy.Right.READ, tenant=tenant).allowed
    refused = policy.decide(user, policy.Right.READ, tenant=other_tenant)
    assert (refused.allowed, refused.code) == (False, "not_member")
    for right in policy.ROLE_RIGHTS:
        assert policy.tenant_ids_where(user, right) == [tenant.pk], right


def test_removing_a_member_revokes_their_tokens_of_that_tenant(
    tenant: Any, other_tenant: Any, tenant_admin: Any, operator: Any
) -> None:
    MembershipFactory(tenant=other_tenant, user=operator, role=Role.VIEWER)
    here, elsewhere = token_for(operator, tenant), token_for(operator, other_tenant)
    membership_remove(
        membership=Membership.objects.get(tenant=tenant, user=operator), actor=tenant_admin, door="test"
    )
    # Re-added later, the old token does not come back to life.
    MembershipFactory(tenant=tenant, user=operator, role=Role.OPERATOR)
    assert _rest(here).get("/api/v1/executions/").status_code == 401
    assert _rest(elsewhere).get("/api/v1/executions/").status_code == 200
    removal = AuditLog.objects.get(event_type="member_removed")
    assert len(removal.details["tokens_revoked"]) == 1


@pytest.mark.django_db(transaction=True)
def test_a_socket_opened_with_a_token_sees_its_tenant_only() -> None:
    from tests.execution.policy.doors import _subscribe

    world = world_build()
    other = TenantFactory(slug="other")
    user = world.users["admin"]
    MembershipFactory(tenant=other, user=user, role=Role.ADMIN)
    key = token_for(user, other)  # bound to "other", an admin of acme too
    execution = execution_make(world, "prod")
    assert not run_async(_subscribe(f"/ws/executions/{execution.execution_id}/", key))
    assert not run_async(_subscribe("/ws/tenants/acme/executions/", key))
    assert run_async(_subscribe("/ws/tenants/other/executions/", key))
