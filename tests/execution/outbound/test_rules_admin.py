"""Only a superuser opens special addresses for a tenant; a tenant admin lists names
(docs/security.md "Outbound connections": who may add what)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.test import Client

from execution.models import OutboundAllowRule
from execution.outbound import OutboundRefused, check_host
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
ADD = "/admin/execution/outboundallowrule/add/"


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def rule_editor(tenant_admin: Any) -> Any:
    tenant_admin.is_staff = True
    tenant_admin.save()
    tenant_admin.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["add_outboundallowrule", "change_outboundallowrule", "view_outboundallowrule"]
        )
    )
    return tenant_admin


def _form(tenant: Any, pattern: str, *, opens: bool) -> dict[str, Any]:
    form = {"tenant": tenant.pk, "environment": "", "host_pattern": pattern, "description": ""}
    if opens:
        form["opens_special"] = "on"
    return form


def test_a_tenant_admin_cannot_open_loopback_for_their_tenant(tenant: Any, rule_editor: Any) -> None:
    response = _client(rule_editor).post(ADD, _form(tenant, "127.0.0.0/8", opens=True))
    assert response.status_code == 302  # saved as a listing only: the field is not theirs
    rule = OutboundAllowRule.objects.get()
    assert rule.opens_special is False
    with pytest.raises(OutboundRefused, match="loopback"):
        check_host("127.0.0.1", 8080, tenant="acme")
    with pytest.raises(ValidationError) as refused:
        OutboundAllowRule(tenant=tenant, host_pattern="10.0.0.0/8", opens_special=True).validate_editor(
            rule_editor
        )
    assert "opens_special" in refused.value.message_dict


def test_a_tenant_admin_cannot_edit_a_superusers_opening(tenant: Any, rule_editor: Any) -> None:
    opening = OutboundAllowRule.objects.create(tenant=tenant, host_pattern="10.20.0.0/16", opens_special=True)
    response = _client(rule_editor).post(
        f"/admin/execution/outboundallowrule/{opening.pk}/change/", _form(tenant, "0.0.0.0/0", opens=False)
    )
    assert response.status_code == 403  # read-only to the tenant's admins
    assert OutboundAllowRule.objects.get(pk=opening.pk).host_pattern == "10.20.0.0/16"
    # And the model's rule, whatever door a save comes through.
    opening.host_pattern = "0.0.0.0/0"
    with pytest.raises(ValidationError):
        opening.validate_editor(rule_editor)


def test_a_superuser_opens_a_network_and_its_pattern_must_be_one(tenant: Any) -> None:
    root = UserFactory(username="root-user", is_staff=True, is_superuser=True)
    bad = _client(root).post(ADD, _form(tenant, "db.internal", opens=True))
    assert bad.status_code == 200 and "names a network" in bad.content.decode()
    assert _client(root).post(ADD, _form(tenant, "10.20.0.0/16", opens=True)).status_code == 302
    assert check_host("10.20.1.1", 22, tenant="acme").ip == "10.20.1.1"


def test_a_host_pattern_is_one_pattern(tenant: Any) -> None:
    for pattern in ("a b", "host,other", "http://x/", "bad/pattern"):
        with pytest.raises(ValidationError):
            OutboundAllowRule(tenant=tenant, host_pattern=pattern).full_clean()
    OutboundAllowRule(tenant=tenant, host_pattern="*.Example.COM").full_clean()
