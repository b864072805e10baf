from __future__ import annotations

from typing import Any

import pytest

from execution.enums import Role
from tests.factories import (
    ExecutionFactory,
    ExecutionStepFactory,
    MembershipFactory,
    TenantFactory,
    UserFactory,
    token_for,
)


@pytest.fixture
def watch_setup(transactional_db: Any) -> dict[str, Any]:
    """A tenant with a viewer (token), a three-step execution, and an outsider (token)."""
    tenant = TenantFactory(slug="acme")
    other = TenantFactory(slug="other")
    viewer = UserFactory(username="vic-viewer")
    MembershipFactory(tenant=tenant, user=viewer, role=Role.VIEWER)
    outsider = UserFactory(username="oscar-outsider")
    MembershipFactory(tenant=other, user=outsider, role=Role.ADMIN)
    execution = ExecutionFactory(tenant=tenant, actor=viewer)
    for index, name in enumerate(["check config", "restart", "probe"]):
        ExecutionStepFactory(execution=execution, step_index=index, step_name=name, step_type="noop")
    return {
        "tenant": tenant,
        "execution": execution,
        "viewer": viewer,
        "token": token_for(viewer),
        "outsider_token": token_for(outsider),
    }
