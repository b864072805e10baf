"""Migration monitoring.0007 keeps every subscription: duplicate names in a tenant are renamed
with a suffix before the unique constraint is added."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from monitoring.notifications.models import Channel, Kind, NotificationSubscription
from tests.factories import TenantFactory

BEFORE = [("monitoring", "0006_delivery_plural")]
AFTER = [("monitoring", "0007_subscription_names_unique")]


@pytest.fixture
def back_to_latest(transactional_db: Any) -> Iterator[None]:
    try:
        yield
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())


def test_duplicate_names_are_renamed_and_nothing_is_lost(back_to_latest: None) -> None:
    one, two = TenantFactory(), TenantFactory()
    MigrationExecutor(connection).migrate(BEFORE)
    long_name = "n" * 100
    names = [
        (one, "on-call"),
        (one, "on-call"),
        (one, "on-call (2)"),  # taken already: the second duplicate skips it
        (one, "on-call"),
        (one, long_name),
        (one, long_name),
        (two, "on-call"),
    ]
    ids = [
        NotificationSubscription.objects.create(
            tenant=tenant, name=name, kinds=[Kind.FAILED], channel=Channel.EMAIL, destination="a@example.test"
        ).pk
        for tenant, name in names
    ]
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    after = dict(NotificationSubscription.objects.values_list("pk", "name"))
    assert [after[pk] for pk in ids] == [
        "on-call",
        "on-call (3)",
        "on-call (2)",
        "on-call (4)",
        long_name,
        "n" * 96 + " (2)",
        "on-call",
    ]
