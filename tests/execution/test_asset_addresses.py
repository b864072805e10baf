"""An asset's address is one host name or IP literal and a port (docs/security.md "Addresses
are one host"), at every door an asset comes through: the model, the admin, the Asset Service."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.test import Client

from execution.errors import NotFound
from execution.models import Asset
from execution.services.assets import from_service
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
ADD = "/admin/execution/asset/add/"
# The finding: a libpq host list whose second entry is the embedded server's socket directory.
HOST_LIST = "nonexistent.invalid,/srv/ops/.state/test/pgdata"

REFUSED = [
    (HOST_LIST, "list of hosts"),
    ("/run/postgresql", "path"),
    ("@abstract-socket", "path"),
    ("db.example.com options=-csearch_path=x", "whitespace"),
    ("host=10.0.0.1", "connection-string"),
    ("db.example.com\n", "whitespace"),
    ("db\x00.example.com", "control"),
    ("2130706433", "numeric IPv4 form"),
    ("0177.0.0.1", "numeric IPv4 form"),
    ("0x7f.1", "numeric IPv4 form"),
    ("127.1", "numeric IPv4 form"),
    ("fe80::1%lo", "zone id"),
    ("[fe80::1%25lo]", "zone id"),
    ("db.example.com:5432", "port goes in the port field"),
    ("user@db.example.com", "user information"),
    ("bücher.example", "IDNA"),
    ("1.2.3.4.5", "numeric label"),
    ("-db.example.com", "not a host name"),
]
ACCEPTED = [
    "db.example.com",
    "db-1",
    "10.0.0.7",
    "2001:db8::7",
    "[2001:db8::7]",
    "xn--bcher-kva.example",
    "db.",
]


@pytest.mark.parametrize(("address", "why"), REFUSED)
def test_an_address_that_is_not_one_host_is_refused_at_save(tenant: Any, address: str, why: str) -> None:
    asset = Asset(tenant=tenant, hostname="pg-1", connection_type="database", address=address, port=5432)
    with pytest.raises(ValidationError) as refused:
        asset.full_clean()
    assert why in refused.value.message_dict["address"][0]


@pytest.mark.parametrize("address", ACCEPTED)
def test_one_host_name_or_ip_literal_is_accepted(tenant: Any, address: str) -> None:
    Asset(tenant=tenant, hostname="pg-1", connection_type="database", address=address, port=5432).full_clean()


def test_without_an_address_the_hostname_of_a_network_asset_is_the_address(tenant: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        Asset(tenant=tenant, hostname="a,/run/postgresql", connection_type="ssh").full_clean()
    assert "list of hosts" in refused.value.message_dict["hostname"][0]
    # A local asset's hostname is only its name in the inventory.
    Asset(tenant=tenant, hostname="local box", connection_type="local").full_clean()


def test_a_database_asset_names_a_plain_database_and_a_known_ssl_mode(tenant: Any) -> None:
    for metadata, why in (
        ({"database": "host=/run/postgresql dbname=x"}, "plain database name"),
        ({"database": "postgresql://evil/x"}, "plain database name"),
        ({"database": "app", "sslmode": "verify-ca"}, "sslmode"),
    ):
        asset = Asset(
            tenant=tenant, hostname="pg-1", connection_type="database", address="10.0.0.7", metadata=metadata
        )
        with pytest.raises(ValidationError) as refused:
            asset.full_clean()
        assert why in refused.value.message_dict["metadata"][0]


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _form(tenant: Any, address: str) -> dict[str, Any]:
    return {
        "tenant": tenant.pk,
        "hostname": "pg-self",
        "connection_type": "database",
        "address": address,
        "port": "5432",
        "username": "postgres",
        "tags": "[]",
        "metadata": '{"database": "opsconductor"}',
    }


def test_the_admin_refuses_a_host_list_for_a_tenant_admin_and_a_superuser(
    tenant: Any, tenant_admin: Any
) -> None:
    """The finding at its door: the admin's add form stored ``nonexistent.invalid,<socket
    dir>`` (it only refused an address starting with "/"), and a sql step then reached the
    product's own database as its superuser."""
    tenant_admin.is_staff = True
    tenant_admin.save()
    tenant_admin.user_permissions.add(
        *Permission.objects.filter(codename__in=["add_asset", "change_asset", "view_asset"])
    )
    root = UserFactory(username="root-user", is_staff=True, is_superuser=True)
    for user in (tenant_admin, root):
        response = _client(user).post(ADD, _form(tenant, HOST_LIST))
        assert response.status_code == 200, response.status_code  # the form again, with the error
        assert "is a list of hosts" in response.content.decode()
        assert not Asset.objects.exists()
    assert _client(root).post(ADD, _form(tenant, "db.example.com")).status_code == 302
    assert Asset.objects.get().address == "db.example.com"


def test_an_asset_service_answer_obeys_the_same_rules() -> None:
    answer = {"id": 5, "hostname": "pg", "connection_type": "database", "address": HOST_LIST, "port": 5432}
    with pytest.raises(NotFound, match="list of hosts"):
        from_service(answer)
    with pytest.raises(NotFound, match="port"):
        from_service({**answer, "address": "10.0.0.5", "port": 70000})
    assert from_service({**answer, "address": "10.0.0.5", "port": "5433"}).port == 5433
