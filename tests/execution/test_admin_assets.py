"""Only a superuser creates, edits or switches to a ``local`` asset (docs/security.md)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.test import Client

from execution.models import Asset
from tests.factories import AssetFactory, LocalAssetFactory, UserFactory

pytestmark = pytest.mark.django_db
ADD = "/admin/execution/asset/add/"


def _form(tenant: Any, connection_type: str, hostname: str = "box-1") -> dict[str, Any]:
    return {
        "tenant": tenant.pk,
        "hostname": hostname,
        "connection_type": connection_type,
        "address": "127.0.0.1",
        "tags": "[]",
        "metadata": "{}",
    }


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def asset_editor(tenant_admin: Any) -> Any:
    """A tenant admin with the admin's asset permissions (staff, not superuser)."""
    tenant_admin.is_staff = True
    tenant_admin.save()
    tenant_admin.user_permissions.add(
        *Permission.objects.filter(codename__in=["add_asset", "change_asset", "view_asset"])
    )
    return tenant_admin


def test_a_tenant_admin_cannot_create_a_local_asset_in_the_admin(tenant: Any, asset_editor: Any) -> None:
    response = _client(asset_editor).post(ADD, _form(tenant, "local"))
    assert response.status_code == 200  # the form again, with the error
    assert not Asset.objects.exists()
    ssh = _client(asset_editor).post(ADD, _form(tenant, "ssh"))
    assert ssh.status_code == 302 and Asset.objects.get().connection_type == "ssh"


def test_a_tenant_admin_cannot_switch_an_asset_to_local_or_edit_a_local_one(
    tenant: Any, asset_editor: Any
) -> None:
    remote = AssetFactory(tenant=tenant, hostname="remote", connection_type="ssh")
    response = _client(asset_editor).post(
        f"/admin/execution/asset/{remote.pk}/change/", _form(tenant, "local", hostname="remote")
    )
    assert response.status_code == 200
    assert Asset.objects.get(pk=remote.pk).connection_type == "ssh"
    local = LocalAssetFactory(tenant=tenant)
    with pytest.raises(ValidationError) as refused:
        local.validate_editor(asset_editor)
    assert "connection_type" in refused.value.message_dict


def test_a_superuser_creates_a_local_asset(tenant: Any) -> None:
    root = UserFactory(username="root-user", is_staff=True, is_superuser=True)
    response = _client(root).post(ADD, _form(tenant, "local"))
    assert response.status_code == 302, response.content[:500]
    assert Asset.objects.get().connection_type == "local"


def test_the_default_connection_is_ssh() -> None:
    assert Asset._meta.get_field("connection_type").default == "ssh"


def test_nobody_gives_an_asset_a_unix_socket_address(tenant: Any, asset_editor: Any) -> None:
    # A database asset at the embedded PostgreSQL's socket directory (trust authentication)
    # was the product's own database, every tenant's rows, to any submitter of the tenant.
    # An address is one host reached over the network, for a superuser too
    # (tests/execution/test_asset_addresses.py has every refused form).
    socket = {**_form(tenant, "database", hostname="pg-self"), "address": "/srv/ops/.state/pgdata"}
    root = UserFactory(username="root-user", is_staff=True, is_superuser=True)
    for user in (asset_editor, root):
        response = _client(user).post(ADD, socket)
        assert response.status_code == 200  # the form again, with the error
        assert "not a host reached over the network" in response.content.decode()
        assert not Asset.objects.exists()
