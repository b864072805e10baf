"""The members page's API tokens (docs/contract.md#members-and-tokens): named, shown once,
listed with their expiry and last use, revoked after a confirmation; tenant admins issue
them for the members they manage, every member for themselves; and whom an admin may add."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from execution.enums import Role
from execution.models import ApiToken, AuditLog, Membership
from execution.services.tokens import token_hash
from tests.factories import MembershipFactory, UserFactory, token_for

pytestmark = pytest.mark.django_db


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _post(who: Any, tenant: Any, **data: Any) -> Any:
    return _client(who).post(f"/tenants/{tenant.slug}/members/", data)


def test_an_admin_issues_a_named_expiring_token_shown_once(
    tenant: Any, tenant_admin: Any, operator: Any
) -> None:
    client = _client(tenant_admin)
    url = f"/tenants/{tenant.slug}/members/"
    response = client.post(
        url, {"action": "token-issue", "user": operator.pk, "name": "ci", "expires_in_days": "90"}
    )
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    key = response.context["new_key"]
    token = ApiToken.objects.get(user=operator)
    assert token.key_hash == token_hash(key) and (token.tenant, token.name, token.created_by) == (
        tenant,
        "ci",
        tenant_admin,
    )
    assert 89 <= (token.expires_at - token.created_at).days <= 90
    assert key in response.content.decode()
    listing = client.get(url).content.decode()
    assert key not in listing and token.prefix in listing and f'data-token="{token.token_id}"' in listing
    audit = AuditLog.objects.get(event_type="token_issued")
    assert audit.details == {
        "user": operator.username,
        "token": "ci",
        "prefix": token.prefix,
        "expires_at": token.expires_at.isoformat(),
        "door": "page",
    }
    assert key not in str(audit.details)


def test_a_revoke_is_confirmed_and_takes_the_token_away(
    tenant: Any, tenant_admin: Any, operator: Any
) -> None:
    token_for(operator, tenant, name="ci")
    token = ApiToken.objects.get()
    page = _client(tenant_admin).get(f"/tenants/{tenant.slug}/members/").content.decode()
    form_start = page.index(f'name="token" value="{token.token_id}"')
    form = page[page.rindex("<form", 0, form_start) : form_start]
    # escapejs writes the hyphen as \u002D: the browser's dialog shows "olga-operator".
    assert "return confirm('Revoke the API token ci of olga\\u002Doperator? Clients using it stop" in form
    response = _post(tenant_admin, tenant, action="token-revoke", token=str(token.token_id))
    assert response.status_code == 302 and not ApiToken.objects.exists()
    assert AuditLog.objects.filter(event_type="token_revoked", actor=tenant_admin).exists()


def test_a_member_manages_their_own_tokens_and_sees_no_one_elses(
    tenant: Any, operator: Any, viewer: Any
) -> None:
    token_for(operator, tenant, name="olgas")
    page = _client(viewer).get(f"/tenants/{tenant.slug}/members/").content.decode()
    assert "olgas" not in page and 'id="issue-token"' in page and 'id="add-member"' not in page
    response = _post(viewer, tenant, action="token-issue", user=viewer.pk, name="mine")
    assert response.status_code == 200 and ApiToken.objects.filter(user=viewer, name="mine").exists()
    # Not for someone else, and not someone else's revoked.
    refused = _post(viewer, tenant, action="token-issue", user=operator.pk, name="theirs")
    assert refused.status_code == 403 and not ApiToken.objects.filter(name="theirs").exists()
    theirs = ApiToken.objects.get(name="olgas")
    assert _post(viewer, tenant, action="token-revoke", token=str(theirs.token_id)).status_code == 403
    assert ApiToken.objects.filter(pk=theirs.pk).exists()
    mine = ApiToken.objects.get(name="mine")
    assert _post(viewer, tenant, action="token-revoke", token=str(mine.token_id)).status_code == 302
    assert not ApiToken.objects.filter(pk=mine.pk).exists()


def test_the_token_list_shows_expiry_and_last_use(tenant: Any, tenant_admin: Any, operator: Any) -> None:
    key = token_for(operator, tenant, name="ci")
    Client(REMOTE_ADDR="198.51.100.4").get("/api/v1/executions/", HTTP_AUTHORIZATION=f"Token {key}")
    row = _client(tenant_admin).get(f"/tenants/{tenant.slug}/members/").content.decode()
    row = row[row.index('<tr data-token="') :]
    row = row[: row.index("</tr>")]
    assert "from 198.51.100.4" in row and "never" in row  # never expires


def test_another_tenants_admin_cannot_be_added_and_keeps_their_own_tokens(
    tenant: Any, tenant_admin: Any, outsider: Any, other_tenant: Any
) -> None:
    """Finding 5: adding another tenant's admin blocked that admin's own token management."""
    response = _post(tenant_admin, tenant, action="add", username=outsider.username, role="viewer")
    assert response.status_code == 403
    assert "a member of a tenant you do not administer" in response.content.decode()
    assert not Membership.objects.filter(tenant=tenant, user=outsider).exists()
    own = _post(outsider, other_tenant, action="token-issue", user=outsider.pk, name="mine")
    assert own.status_code == 200 and ApiToken.objects.filter(user=outsider, tenant=other_tenant).exists()


def test_a_staff_user_is_added_by_a_superuser_only(tenant: Any, tenant_admin: Any) -> None:
    staff = UserFactory(username="stella-staff", is_staff=True)
    assert (
        _post(tenant_admin, tenant, action="add", username="stella-staff", role="viewer").status_code == 403
    )
    assert not Membership.objects.filter(user=staff).exists()
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    MembershipFactory(tenant=tenant, user=root, role=Role.ADMIN)  # superusers act through memberships
    assert _post(root, tenant, action="add", username="stella-staff", role="viewer").status_code == 302
    assert Membership.objects.filter(user=staff, tenant=tenant).exists()


def test_an_admin_adds_an_account_that_is_only_in_their_tenants(
    tenant: Any, tenant_admin: Any, other_tenant: Any
) -> None:
    loner = UserFactory(username="loner")  # no membership anywhere (e.g. removed earlier)
    assert _post(tenant_admin, tenant, action="add", username="loner", role="viewer").status_code == 302
    two = UserFactory(username="two-tenants")
    MembershipFactory(tenant=tenant, user=two, role=Role.VIEWER)
    MembershipFactory(tenant=other_tenant, user=two, role=Role.VIEWER)
    # The shared account stays manageable inside the tenant (a role, a removal) ...
    shared = Membership.objects.get(user=two, tenant=tenant)
    assert (
        _post(tenant_admin, tenant, action="role", membership=shared.pk, role="operator").status_code == 302
    )
    # ... but gets no token from this admin: it also acts in a tenant they do not administer.
    refused = _post(tenant_admin, tenant, action="token-issue", user=two.pk, name="x")
    assert refused.status_code == 403 and not ApiToken.objects.filter(user=two).exists()
    assert Membership.objects.filter(user=loner, tenant=tenant).exists()


def test_the_issue_form_offers_only_members_the_admin_may_issue_for(
    tenant: Any, tenant_admin: Any, operator: Any, other_tenant: Any
) -> None:
    two = UserFactory(username="two-tenants")
    MembershipFactory(tenant=tenant, user=two, role=Role.VIEWER)
    MembershipFactory(tenant=other_tenant, user=two, role=Role.VIEWER)
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    MembershipFactory(tenant=tenant, user=root, role=Role.VIEWER)
    page = _client(tenant_admin).get(f"/tenants/{tenant.slug}/members/").content.decode()
    form = page[page.index('id="issue-token"') :]
    form = form[: form.index("</form>")]
    assert "ann-admin" in form and "olga-operator" in form
    assert "two-tenants" not in form and ">root<" not in form


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"action": "token-issue", "user": "olga-operator", "name": "ci"}, "user: no such member"),
        ({"action": "token-issue", "user": "1e3", "name": "ci"}, "user: no such member"),
        ({"action": "role", "membership": "x1", "role": "viewer"}, "membership: no such member"),
        ({"action": "remove", "membership": "9" * 30}, "membership: no such member"),
    ],
)
def test_a_posted_id_that_is_no_number_is_refused_not_a_server_error(
    tenant: Any, tenant_admin: Any, operator: Any, data: dict[str, str], reason: str
) -> None:
    """Red team: a username where the form posts a user id was a 500 (int() in the query)."""
    before = (Membership.objects.count(), ApiToken.objects.count())
    response = _post(tenant_admin, tenant, **data)
    assert response.status_code == 400
    assert reason in response.content.decode()
    assert (Membership.objects.count(), ApiToken.objects.count()) == before
