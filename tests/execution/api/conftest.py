"""Fixtures of the API tests: the docs/contract.md#submission example against a demo-like tenant with assets."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.factories import AssetFactory, ReadOnlyCommandRuleFactory


def client_for(user: Any = None) -> APIClient:
    client = APIClient()
    if user is not None:
        from tests.factories import token_for

        client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
    return client


@pytest.fixture
def assets(tenant: Any) -> dict[str, Any]:
    # The example declares `nginx -t` read: the tenant's read-only command rule allows it (docs/contract.md#submission).
    ReadOnlyCommandRuleFactory(tenant=tenant, pattern="nginx -t")
    return {
        "web-1": AssetFactory(tenant=tenant, hostname="web-1"),
        "web-2": AssetFactory(tenant=tenant, hostname="web-2"),
    }


def example_body(asset_id: int) -> dict[str, Any]:
    """The docs/contract.md#submission example, verbatim except the asset id of the tenant's second host."""
    return copy.deepcopy(
        {
            "tenant": "acme",
            "plan": {
                "name": "restart nginx on web-1",
                "environment": "staging",
                "estimated_duration_seconds": 20,
                "steps": [
                    {
                        "name": "check config",
                        "type": "command",
                        "target": {"hostname": "web-1"},
                        "params": {"command": "nginx -t"},
                        "action_class": "read",
                    },
                    {
                        "name": "restart",
                        "type": "command",
                        "target": {"asset_id": asset_id},
                        "params": {"command": "systemctl restart nginx"},
                        "timeout_seconds": 15,
                    },
                    {
                        "name": "probe",
                        "type": "validate",
                        "params": {"http_get": "http://web-1/health", "expect_status": 200},
                        "continue_on_error": False,
                    },
                ],
            },
            "priority": 3,
            "approval_level": 1,
            "dry_run": False,
            "tags": ["nginx"],
            "metadata": {"ticket": "OPS-1"},
        }
    )


@pytest.fixture
def body(assets: dict[str, Any]) -> dict[str, Any]:
    return example_body(assets["web-2"].pk)


def noop_body(
    *, environment: str = "dev", level: int = 0, estimate: float = 30, name: str = "noop"
) -> dict[str, Any]:
    return {
        "tenant": "acme",
        "plan": {
            "name": name,
            "environment": environment,
            "estimated_duration_seconds": estimate,
            "steps": [{"name": "nothing", "type": "noop", "params": {}}],
        },
        "approval_level": level,
    }
