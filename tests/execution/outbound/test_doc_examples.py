"""The allow-list examples of docs/security.md ("Outbound connections"), row by row, through
the guard every sender asks. A name row is checked with a public address in its place where
it would need public DNS (the tests resolve none); refusals by the list come before any
resolution, so those rows keep their names."""

from __future__ import annotations

from typing import Any

import pytest

from execution.models import OutboundAllowRule
from execution.outbound import OutboundRefused, check_url

pytestmark = pytest.mark.django_db
PUBLIC = "93.184.215.14"


def _rule(tenant: Any, pattern: str, *, environment: str = "", opens_special: bool = False) -> None:
    OutboundAllowRule.objects.create(
        tenant=tenant, environment=environment, host_pattern=pattern, opens_special=opens_special
    )


def _sent(url: str) -> bool:
    try:
        check_url(url, tenant="acme", environment="prod")
    except OutboundRefused:
        return False
    return True


def _refusal(url: str) -> str:
    with pytest.raises(OutboundRefused) as refused:
        check_url(url, tenant="acme", environment="prod")
    return str(refused.value)


def test_a_name_pattern_matches_whole_names_below_it(tenant: Any) -> None:
    _rule(tenant, "*.example.com")
    for url in ("https://example.com/", "https://api.example.com.evil.test/"):
        assert "not on the outbound allow-list" in _refusal(url)


def test_a_rule_of_another_environment_does_not_count(tenant: Any) -> None:
    _rule(tenant, "*.example.com", environment="dev")
    assert "not on the outbound allow-list of tenant 'acme' in prod" in _refusal("https://api.example.com/")


def test_a_public_network_is_sent(tenant: Any) -> None:
    _rule(tenant, "93.184.215.0/24")
    assert _sent(f"http://{PUBLIC}:8080/")


def test_a_tenant_admins_star_reaches_public_addresses_only(tenant: Any) -> None:
    _rule(tenant, "*")
    assert _sent(f"http://{PUBLIC}/")
    assert "private" in _refusal("http://10.0.0.5/")
    assert "loopback" in _refusal("http://127.0.0.1/")
    assert "cloud metadata" in _refusal("http://169.254.169.254/")


def test_the_backslash_url_is_judged_by_the_host_requests_connects_to(tenant: Any) -> None:
    _rule(tenant, "allowed.example")
    assert "'127.0.0.1' is not on the outbound allow-list" in _refusal(
        "http://127.0.0.1:8000\\@allowed.example/"
    )


def test_a_superusers_opening_of_a_private_network(tenant: Any) -> None:
    _rule(tenant, "10.20.0.0/16", opens_special=True)
    assert _sent("http://10.20.3.4:8080/")
    assert not _sent("http://10.21.0.1/")


def test_a_superusers_opening_of_one_loopback_port(tenant: Any) -> None:
    _rule(tenant, "127.0.0.1:9100", opens_special=True)
    assert _sent("http://127.0.0.1:9100/metrics")
    assert "loopback" in _refusal("http://127.0.0.1:9200/")


def test_the_products_own_web_port_needs_an_opening_that_names_it(tenant: Any, settings: Any) -> None:
    settings.OUTBOUND_OPEN_NETWORKS = ["127.0.0.0/8"]
    settings.OPS_HOST, settings.OPS_PORT = "127.0.0.1", 8000
    _rule(tenant, "127.0.0.1")
    assert "the product's own web port" in _refusal("http://127.0.0.1:8000/")
    settings.OUTBOUND_OPEN_NETWORKS = ["127.0.0.0/8", "127.0.0.1:8000"]
    assert _sent("http://127.0.0.1:8000/")


def test_a_metadata_address_opens_only_by_itself(tenant: Any, settings: Any) -> None:
    settings.OUTBOUND_OPEN_NETWORKS = ["169.254.0.0/16"]
    _rule(tenant, "*")
    assert "cloud metadata" in _refusal("http://169.254.169.254/")
