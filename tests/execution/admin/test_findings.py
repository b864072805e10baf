"""The admin door's findings, replayed: Alice, a staff admin of tenant ``alpha`` holding every
model permission Django has (the admins relied on them), against tenant ``bravo-zq``'s
assets, read-only command rules and outbound allow-list rules (docs/security.md#what-a-tenant-admin-can-do).
And what she must still be able to do: her own tenant's configuration, in the admin.
"""

from __future__ import annotations

from typing import Any

import pytest

from execution.models import (
    Asset,
    AuditLog,
    ConcurrencyLimit,
    OutboundAllowRule,
    ReadOnlyCommandRule,
)
from monitoring.notifications.models import NotificationSubscription
from tests.execution.admin.walker import client_for, world_build
from tests.factories import AssetFactory, ReadOnlyCommandRuleFactory

pytestmark = pytest.mark.django_db
ASSET_FORM = {"connection_type": "ssh", "tags": "[]", "metadata": "{}", "port": "22", "username": "deploy"}


def _recorded(world: Any) -> bool:
    return AuditLog.objects.filter(
        tenant=world.bravo, actor=world.alice, event_type="rbac_violation"
    ).exists()


def test_a_tenant_admin_cannot_repoint_another_tenants_ssh_asset() -> None:
    # The attack: point bravo's SSH asset at a host of one's own; its credentials go there.
    world = world_build()
    theirs = AssetFactory(
        tenant=world.bravo,
        hostname="web-bravo",
        connection_type="ssh",
        address="192.0.2.20",
        credential_ref="db:bravo-zq/ssh#password",
    )
    client = client_for(world.alice)
    assert "web-bravo" not in client.get("/admin/execution/asset/").content.decode()
    url = f"/admin/execution/asset/{theirs.pk}/change/"
    assert client.get(url).status_code == 404
    form = {
        **ASSET_FORM,
        "hostname": "web-bravo",
        "address": "198.51.100.66",
        "credential_ref": theirs.credential_ref,
    }
    for tenant in (world.bravo, world.alpha):  # in place, or moved into her own tenant
        assert client.post(url, {**form, "tenant": tenant.pk}).status_code == 404
    theirs.refresh_from_db()
    assert (theirs.tenant_id, theirs.address) == (world.bravo.pk, "192.0.2.20")
    assert _recorded(world)


def test_a_tenant_admin_cannot_plant_or_change_a_read_only_rule_in_another_tenant() -> None:
    # The attack: declare "systemctl stop" read-only in bravo, whose prod stop then runs at level 0.
    world = world_build()
    client = client_for(world.alice)
    planted = client.post(
        "/admin/execution/readonlycommandrule/add/",
        {"tenant": world.bravo.pk, "pattern": "systemctl stop .*"},
    )
    assert planted.status_code == 403
    assert not ReadOnlyCommandRule.objects.filter(tenant=world.bravo).exists()
    assert _recorded(world)
    theirs = ReadOnlyCommandRuleFactory(tenant=world.bravo, pattern="nginx -t")
    changed = client.post(
        f"/admin/execution/readonlycommandrule/{theirs.pk}/change/",
        {"tenant": world.bravo.pk, "pattern": "systemctl stop .*"},
    )
    assert changed.status_code == 404
    assert ReadOnlyCommandRule.objects.get(pk=theirs.pk).pattern == "nginx -t"


def test_a_tenant_admin_cannot_allow_list_a_host_for_another_tenant() -> None:
    world = world_build()
    answer = client_for(world.alice).post(
        "/admin/execution/outboundallowrule/add/", {"tenant": world.bravo.pk, "host_pattern": "*"}
    )
    assert answer.status_code == 403
    assert not OutboundAllowRule.objects.filter(tenant=world.bravo).exists()


def test_model_permissions_open_nothing_of_the_installation_to_a_tenant_admin() -> None:
    world = world_build()
    client = client_for(world.alice)
    for url in ("/admin/execution/tenant/", "/admin/auth/user/", "/admin/execution/timeoutpolicy/"):
        assert client.get(url).status_code == 403, url
    index = client.get("/admin/").content.decode()
    assert "/admin/execution/asset/" in index and "/admin/auth/user/" not in index


def test_a_tenant_that_does_not_exist_is_an_invalid_choice_not_a_failure() -> None:
    world = world_build()
    answer = client_for(world.alice).post(
        "/admin/execution/readonlycommandrule/add/", {"tenant": "987654", "pattern": "uptime"}
    )
    assert answer.status_code == 200
    assert "tenant" in answer.context["adminform"].form.errors
    assert not ReadOnlyCommandRule.objects.exists()


def test_a_tenant_admin_manages_their_own_tenants_configuration_in_the_admin() -> None:
    world = world_build()
    client = client_for(world.alice)
    alpha = world.alpha.pk
    posts = {
        "asset": {**ASSET_FORM, "tenant": alpha, "hostname": "web-1", "address": "192.0.2.30"},
        "readonlycommandrule": {"tenant": alpha, "pattern": "nginx -t"},
        "outboundallowrule": {"tenant": alpha, "host_pattern": "api.example.com", "environment": ""},
        "concurrencylimit": {"tenant": alpha, "environment": "", "max_running": "4"},
    }
    for model, form in posts.items():
        answer = client.post(f"/admin/execution/{model}/add/", form)
        assert answer.status_code == 302, (model, answer.context and answer.context["adminform"].form.errors)
    subscription = {
        "tenant": alpha,
        "name": "on-call",
        "kinds": ["failed"],
        "channel": "email",
        "destination": "oncall@example.com",
        "environment": "",
        "is_active": "on",
    }
    assert client.post("/admin/monitoring/notificationsubscription/add/", subscription).status_code == 302
    assert Asset.objects.get(hostname="web-1").tenant_id == alpha
    assert ReadOnlyCommandRule.objects.get().tenant_id == alpha
    assert OutboundAllowRule.objects.get().tenant_id == alpha
    assert ConcurrencyLimit.objects.get().max_running == 4
    assert NotificationSubscription.objects.get().tenant_id == alpha
