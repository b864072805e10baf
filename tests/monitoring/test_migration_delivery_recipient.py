"""Migration monitoring.0008 keeps every delivery: existing rows get no recipient and stay under
the (subscription, event) guard; rows with a recipient are unique per (subscription, event,
recipient)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from monitoring.notifications.models import Channel, Kind, NotificationDelivery, NotificationSubscription
from tests.factories import ExecutionFactory, TenantFactory

BEFORE = [("monitoring", "0007_subscription_names_unique")]
AFTER = [("monitoring", "0008_delivery_recipient")]


@pytest.fixture
def back_to_latest(transactional_db: Any) -> Iterator[None]:
    try:
        yield
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())


def _row(subscription: Any, execution: Any, **extra: Any) -> dict[str, Any]:
    return dict(
        subscription_id=subscription.pk,
        tenant_id=subscription.tenant_id,
        event_id=7,
        execution_id=execution.execution_id,
        kind=Kind.APPROVAL_REQUESTED,
        channel=Channel.EMAIL,
        destination="ada@example.test,bob@example.test",
        next_attempt_at=timezone.now(),
        **extra,
    )


def test_existing_deliveries_are_kept_and_stay_guarded_once(back_to_latest: None) -> None:
    tenant = TenantFactory()
    execution = ExecutionFactory(tenant=tenant)
    subscription = NotificationSubscription.objects.create(
        tenant=tenant, name="mail", kinds=[Kind.APPROVAL_REQUESTED], channel=Channel.EMAIL
    )
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old_model = executor.loader.project_state(BEFORE).apps.get_model("monitoring", "NotificationDelivery")
    old = old_model.objects.create(**_row(subscription, execution))
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    kept = NotificationDelivery.objects.get()
    assert (kept.pk, kept.recipient_id, kept.destination) == (old.pk, None, old.destination)
    with pytest.raises(IntegrityError), transaction.atomic():  # still once per (subscription, event)
        NotificationDelivery.objects.create(**_row(subscription, execution))
    for recipient_id in (1, 2):  # one per recipient beside it
        NotificationDelivery.objects.create(**_row(subscription, execution, recipient_id=recipient_id))
    with pytest.raises(IntegrityError), transaction.atomic():
        NotificationDelivery.objects.create(**_row(subscription, execution, recipient_id=1))
    assert NotificationDelivery.objects.count() == 3
