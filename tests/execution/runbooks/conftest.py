"""Fixtures of the runbook tests: a tenant with web hosts and two runbooks like the demo's."""

from __future__ import annotations

from typing import Any

import pytest

from execution.runbooks.models import Runbook
from execution.runbooks.services import runbook_create
from tests.factories import AssetFactory

HEALTH_PARAMETERS = {
    "type": "object",
    "properties": {
        "host": {"type": "string", "choices_from": {"tag": "web"}},
        "path": {"type": "string", "pattern": "^/[a-z0-9/_-]*$", "default": "/health"},
        "tries": {"type": "integer", "minimum": 1, "maximum": 5, "default": 1},
        "verbose": {"type": "boolean", "default": False},
        "mode": {"type": "string", "enum": ["quick", "full"], "default": "quick"},
    },
    "required": ["host"],
}
HEALTH_PLAN = {
    "name": "health of {{ params.host }}",
    "environment": "dev",
    "steps": [
        {
            "name": "check {{ params.path }}",
            "type": "noop",
            "target": {"hostname": "{{ params.host }}"},
            "params": {"message": "{{params.mode}} x{{ params.tries }} verbose={{ params.verbose }}"},
            "timeout_seconds": 30,
        }
    ],
}


@pytest.fixture
def web_hosts(tenant: Any) -> list[Any]:
    return [
        AssetFactory(tenant=tenant, hostname="web-1", tags=["web"]),
        AssetFactory(tenant=tenant, hostname="web-2", tags=["web"]),
        AssetFactory(tenant=tenant, hostname="db-1", tags=["db"]),
    ]


@pytest.fixture
def health(tenant: Any, tenant_admin: Any, web_hosts: list[Any]) -> Runbook:
    return runbook_create(
        tenant=tenant,
        actor=tenant_admin,
        slug="health",
        name="Health check",
        parameters=HEALTH_PARAMETERS,
        plan=HEALTH_PLAN,
    )
