"""A short schema-driven fuzz run over the OpenAPI schema: no 5xx, no schema violations."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from tests.factories import AssetFactory, MembershipFactory, TenantFactory, UserFactory

schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", get_wsgi_application())


@pytest.fixture
def keep_test_connection() -> Iterator[None]:
    """Like Django's test client: the in-process WSGI app must not close the test's connection."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def auth_headers(db: Any, keep_test_connection: None) -> dict[str, str]:
    from tests.factories import token_for

    tenant = TenantFactory(slug="acme")
    AssetFactory(tenant=tenant, hostname="web-1")
    user = UserFactory(username="fuzz-admin")
    MembershipFactory(tenant=tenant, user=user, role="admin")
    return {"Authorization": f"Token {token_for(user)}"}


@pytest.mark.django_db
# Every operation except the schema itself and the two vote endpoints (POSTs whose outcome
# depends on approval state; tests/approvals/test_api.py covers their answers).
@schema.exclude(path_regex="/schema/|/approve/|/reject/").parametrize()
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
    derandomize=True,
)
def test_api_conforms_to_its_schema(case: Any, auth_headers: dict[str, str]) -> None:
    # positive_data_acceptance is excluded: a schema-valid body can still name an unknown step
    # type, a missing command or an asset the tenant lacks, and those are 400 by design (docs/contract.md#submission).
    case.call_and_validate(headers=auth_headers, excluded_checks=[positive_data_acceptance])
