"""The scoping costs a fixed number of queries per page, not one per row: the policy's
tenant list is read once per right and request (``staff_tenant_ids``), whatever the number
of rows and of ``has_*_permission`` calls the changelist makes."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.execution.admin.walker import client_for, world_build
from tests.factories import ExecutionFactory, SecretEntryFactory

pytestmark = pytest.mark.django_db
CHANGELISTS = {
    "/admin/execution/execution/": ExecutionFactory,
    "/admin/execution/secretentry/": SecretEntryFactory,
}


def _queries(client: Any, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


@pytest.mark.parametrize("url", list(CHANGELISTS))
def test_a_scoped_changelist_costs_the_same_for_3_rows_and_for_40(url: str) -> None:
    world = world_build()
    client = client_for(world.alice)
    make = CHANGELISTS[url]
    for _ in range(3):
        make(tenant=world.alpha)
        make(tenant=world.bravo)
    few = _queries(client, url)
    for _ in range(37):
        make(tenant=world.alpha)
    assert _queries(client, url) == few
    # Session and user; one read of the tenants per right the page asks about (its own, and
    # the navigation's other admins'); the rows, their count and the filters' choices.
    assert few <= 14, few
