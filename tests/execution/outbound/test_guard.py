"""The guard's decisions: allow-list, special addresses and who opens them, the product's own
ports, metadata, and what it answers (docs/security.md "Outbound connections")."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from execution.models import OutboundAllowRule
from execution.outbound import OutboundRefused, OutboundUnresolved, check_host, check_url
from execution.outbound.addresses import parse_opening, pattern_matches, special_kind

pytestmark = pytest.mark.django_db
PUBLIC = "93.184.215.14"  # a public address; IP literals need no resolver


def _rule(tenant: Any, pattern: str, *, environment: str = "", opens_special: bool = False) -> None:
    OutboundAllowRule.objects.create(
        tenant=tenant, environment=environment, host_pattern=pattern, opens_special=opens_special
    )


def test_a_listed_public_address_is_answered_with_where_to_connect(tenant: Any) -> None:
    _rule(tenant, f"{PUBLIC}/32")
    checked = check_url(f"https://{PUBLIC}:8443/path?q=1", tenant="acme")
    assert (checked.scheme, checked.host, checked.ip, checked.port) == ("https", PUBLIC, PUBLIC, 8443)
    assert check_url(f"http://{PUBLIC}/", tenant="acme").port == 80


def test_a_host_on_no_list_is_refused(tenant: Any, settings: Any) -> None:
    with pytest.raises(OutboundRefused, match="not on the outbound allow-list of tenant 'acme'"):
        check_url(f"http://{PUBLIC}/", tenant="acme")
    settings.HTTP_OUTBOUND_ALLOWLIST = [PUBLIC]  # the operator's list, for every tenant
    assert check_url(f"http://{PUBLIC}/", tenant="acme").ip == PUBLIC


def test_rules_apply_in_their_environment_and_to_their_tenant(tenant: Any, other_tenant: Any) -> None:
    _rule(tenant, PUBLIC, environment="prod")
    assert check_host(PUBLIC, 443, tenant="acme", environment="prod").ip == PUBLIC
    with pytest.raises(OutboundRefused):
        check_host(PUBLIC, 443, tenant="acme", environment="dev")
    with pytest.raises(OutboundRefused):
        check_host(PUBLIC, 443, tenant="other", environment="prod")


def test_a_listed_name_that_resolves_to_loopback_is_refused(tenant: Any) -> None:
    _rule(tenant, "localhost")
    with pytest.raises(OutboundRefused, match=r"localhost \(resolved\) is a loopback address"):
        check_url("http://localhost:8080/", tenant="acme")


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.1", "private"),
        ("172.16.5.5", "private"),
        ("fd12::1", "private"),
        ("169.254.10.10", "link-local"),
        ("fe80::1", "link-local"),
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("100.64.0.1", "shared"),
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::a00:1", "private"),
        ("240.0.0.1", "reserved"),
    ],
)
def test_special_addresses_are_refused_even_when_listed(tenant: Any, address: str, kind: str) -> None:
    _rule(tenant, "*")
    with pytest.raises(OutboundRefused, match=kind):
        check_host(address, 80, tenant="acme")


def test_a_superuser_rule_opens_a_network_for_its_tenant_only(tenant: Any, other_tenant: Any) -> None:
    _rule(tenant, "10.20.0.0/16", opens_special=True)
    assert check_host("10.20.3.4", 22, tenant="acme").ip == "10.20.3.4"  # listed by the rule too
    _rule(tenant, "*")
    _rule(other_tenant, "*")
    with pytest.raises(OutboundRefused, match="private"):
        check_host("10.21.0.1", 22, tenant="acme")
    with pytest.raises(OutboundRefused, match="private"):
        check_host("10.20.3.4", 22, tenant="other")


def test_a_port_opening_opens_that_port_only(tenant: Any) -> None:
    _rule(tenant, "10.0.0.5:5432", opens_special=True)
    assert check_host("10.0.0.5", 5432, tenant="acme").port == 5432
    with pytest.raises(OutboundRefused, match="private"):
        check_host("10.0.0.5", 22, tenant="acme")


def test_a_metadata_address_opens_only_when_named_alone(settings: Any, tenant: Any) -> None:
    _rule(tenant, "*")
    settings.OUTBOUND_OPEN_NETWORKS = ["169.254.0.0/16"]
    assert check_host("169.254.1.1", 80, tenant="acme").ip == "169.254.1.1"
    with pytest.raises(OutboundRefused, match="cloud metadata"):
        check_host("169.254.169.254", 80, tenant="acme")
    settings.OUTBOUND_OPEN_NETWORKS = ["169.254.169.254"]
    assert check_host("169.254.169.254", 80, tenant="acme").ip == "169.254.169.254"


def test_the_products_own_web_port_needs_an_opening_with_that_port(settings: Any, tenant: Any) -> None:
    _rule(tenant, "*")
    settings.OPS_HOST, settings.OPS_PORT = "0.0.0.0", 18123
    settings.OUTBOUND_OPEN_NETWORKS = ["127.0.0.0/8"]
    assert check_host("127.0.0.1", 18124, tenant="acme").port == 18124
    with pytest.raises(OutboundRefused, match="the product's own web port"):
        check_host("127.0.0.1", 18123, tenant="acme")
    with pytest.raises(OutboundRefused, match="the product's own web port"):
        check_host("::ffff:127.0.0.1", 18123, tenant="acme")
    # The operator's own services are not exempt either.
    with pytest.raises(OutboundRefused, match="the product's own web port"):
        check_url("http://127.0.0.1:18123/", tenant=None, operator=True)
    settings.OUTBOUND_OPEN_NETWORKS = ["127.0.0.0/8", "127.0.0.1:18123"]
    assert check_host("127.0.0.1", 18123, tenant="acme").port == 18123


def test_the_products_own_database_and_redis_ports(settings: Any, tenant: Any) -> None:
    _rule(tenant, "*")
    settings.OUTBOUND_OPEN_NETWORKS = ["10.9.0.0/16"]
    settings.DATABASES = {
        **settings.DATABASES,
        "default": {**settings.DATABASES["default"], "HOST": "10.9.0.7", "PORT": "6432"},
    }
    settings.REDIS_URL = "redis://10.9.0.8:6390/0"
    assert check_host("10.9.0.7", 5432, tenant="acme").ip == "10.9.0.7"
    with pytest.raises(OutboundRefused, match="own database port"):
        check_host("10.9.0.7", 6432, tenant="acme")
    with pytest.raises(OutboundRefused, match="own Redis port"):
        check_host("10.9.0.8", 6390, tenant="acme")


def test_an_operator_destination_may_be_special_but_not_malformed() -> None:
    assert check_url("http://10.1.1.1:8080/api", tenant=None, operator=True).ip == "10.1.1.1"
    with pytest.raises(OutboundRefused, match="scheme 'file'"):
        check_url("file:///etc/passwd", tenant=None, operator=True)
    with pytest.raises(OutboundRefused, match="user information"):
        check_url("http://user:pw@10.1.1.1/", tenant=None, operator=True)


def test_a_name_that_does_not_resolve_is_unresolved_not_refused(tenant: Any) -> None:
    _rule(tenant, "*.invalid")
    with pytest.raises(OutboundUnresolved):
        check_url("http://nothing-here.invalid/", tenant="acme")


def test_what_the_address_rules_call_each_address() -> None:
    assert special_kind(ipaddress.ip_address("8.8.8.8")) is None
    assert special_kind(ipaddress.ip_address("2606:4700:4700::1111")) is None
    assert special_kind(ipaddress.ip_address("2002:7f00:1::1")) == "loopback (as 2002:7f00:1::1)"
    assert pattern_matches("*.example.com", "api.example.com")
    assert not pattern_matches("*.example.com", "example.com.evil")
    assert pattern_matches("10.0.0.0/8", "10.1.2.3") and not pattern_matches("10.0.0.0/8", "10.example")
    assert str(parse_opening("[::1]:8000")) == "[::1]:8000"
    with pytest.raises(ValueError, match="CIDR"):
        parse_opening("localhost")
