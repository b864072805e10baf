"""Members and tokens at the doors the members page tests do not cover: the Django
admin (a tenant admin adding a superuser or another tenant's admin as a member of their
tenant, and the membership form's user choices) and REST (``POST /api/v1/tokens/`` issues
the caller's own token only, never one for another account). The members page's own
regressions: tests/execution/policy/test_token_binding.py and
tests/execution/pages/test_members_tokens.py."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from execution.enums import Role
from execution.models import ApiToken, Membership
from tests.execution.api.conftest import client_for
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def _browser(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def alice(tenant: Any) -> Any:
    """The staff admin of tenant acme (the admin is a door for her)."""
    user = UserFactory(username="alice-admin", is_staff=True)
    MembershipFactory(tenant=tenant, user=user, role=Role.ADMIN)
    return user


def test_a_tenant_admin_cannot_add_a_superuser_in_the_admin(tenant: Any, alice: Any) -> None:
    """Finding 4 at the admin door: no membership for a superuser, so no token for them."""
    root = UserFactory(username="root-super", is_staff=True, is_superuser=True)
    form = _browser(alice).get("/admin/execution/membership/add/").content.decode()
    assert "root-super" not in form
    answer = _browser(alice).post(
        "/admin/execution/membership/add/", {"tenant": tenant.pk, "user": root.pk, "role": "viewer"}
    )
    assert answer.status_code == 200 and "user" in answer.context["adminform"].form.errors
    assert not Membership.objects.filter(user=root).exists()


def test_the_admins_membership_form_offers_no_other_tenants_users(
    tenant: Any, alice: Any, outsider: Any, viewer: Any
) -> None:
    """Finding 5 at the admin door: another tenant's admin is neither listed nor addable
    (their own token management stays theirs)."""
    form = _browser(alice).get("/admin/execution/membership/add/").content.decode()
    assert outsider.username not in form and viewer.username in form
    answer = _browser(alice).post(
        "/admin/execution/membership/add/", {"tenant": tenant.pk, "user": outsider.pk, "role": "viewer"}
    )
    assert answer.status_code == 200 and "user" in answer.context["adminform"].form.errors
    assert list(Membership.objects.filter(user=outsider).values_list("tenant__slug", flat=True)) == ["other"]
    page = _browser(alice).get(f"/tenants/{tenant.slug}/members/").content.decode()
    assert outsider.username not in page


def test_rest_issues_the_callers_own_token_only(tenant: Any, tenant_admin: Any) -> None:
    """Finding 4 at the REST door: a tenant admin's token cannot mint one for a superuser."""
    root = UserFactory(username="root-super", is_staff=True, is_superuser=True)
    MembershipFactory(tenant=tenant, user=root, role=Role.VIEWER)  # added by a superuser
    answer = client_for(tenant_admin).post(
        "/api/v1/tokens/", {"tenant": tenant.slug, "name": "takeover", "user": root.pk}, format="json"
    )
    assert answer.status_code == 400 and answer.json()["errors"][0]["path"] == "user"
    assert not ApiToken.objects.filter(user=root).exists()
    own = client_for(tenant_admin).post(
        "/api/v1/tokens/", {"tenant": tenant.slug, "name": "mine"}, format="json"
    )
    assert own.status_code == 201
    assert ApiToken.objects.get(name="mine").user == tenant_admin
