"""Webhooks pass the outbound guard, and a failure keeps our reason, never the endpoint's body
(docs/notifications.md, docs/security.md "Outbound connections")."""

from __future__ import annotations

import json
from typing import Any

import pytest

from execution.models import OutboundAllowRule
from monitoring.notifications.deliver import deliveries_send_due
from monitoring.notifications.dispatch import notifications_dispatch
from monitoring.notifications.models import Channel, Kind, NotificationDelivery
from tests.factories import ExecutionEventFactory, ExecutionFactory
from tests.monitoring.notifications.helpers import subscribe
from tests.support.httpserver import LoopbackHttpServer

pytestmark = pytest.mark.django_db
LEAK = "internal-page-with-a-secret-7d1e"


def _failed_event(tenant: Any) -> None:
    execution = ExecutionFactory(tenant=tenant, environment="dev")
    event = ExecutionEventFactory(execution=execution, event_type="failed", to_status="failed")
    notifications_dispatch(event_id=event.pk)


def _leaky(status: int) -> LoopbackHttpServer:
    return LoopbackHttpServer(lambda m, p, h, b: (status, {"Content-Type": "text/html"}, LEAK.encode() * 20))


def test_a_backslash_url_to_loopback_sends_nothing(tenant: Any, settings: Any) -> None:
    """The finding at its door: ``http://127.0.0.1:PORT\\@allowed.example/../x`` passed the
    allow-list (its host read as allowed.example) while requests sent it to 127.0.0.1:PORT,
    and the delivery kept 300 characters of the answer, retried 6 times. Loopback is even
    opened here (the operator's setting): the host requests connects to is 127.0.0.1, on no
    allow-list of the tenant, so nothing is sent."""
    settings.OUTBOUND_OPEN_NETWORKS = ["127.0.0.0/8"]
    with _leaky(500) as internal:
        url = f"http://127.0.0.1:{internal.port}\\@allowed.example/../x"
        subscribe(tenant=tenant, kinds=[Kind.FAILED], channel=Channel.WEBHOOK, destination=url)
        OutboundAllowRule.objects.filter(tenant=tenant).delete()
        OutboundAllowRule.objects.create(tenant=tenant, host_pattern="allowed.example")
        _failed_event(tenant)
        assert deliveries_send_due(budget_seconds=10) == 1
        assert internal.requests == []
    delivery = NotificationDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("failed", 1, None)
    assert delivery.last_error.startswith("not sent: http host '127.0.0.1' is not on the outbound allow-list")
    assert LEAK not in json.dumps([delivery.last_error, delivery.attempt_log])


def test_a_failing_webhook_keeps_its_status_and_our_reason_never_the_body(tenant: Any, settings: Any) -> None:
    settings.NOTIFY_MAX_ATTEMPTS = 2
    settings.OUTBOUND_OPEN_NETWORKS = ["127.0.0.0/8"]
    with _leaky(500) as endpoint:
        subscribe(
            tenant=tenant, kinds=[Kind.FAILED], channel=Channel.WEBHOOK, destination=f"{endpoint.url}/hook"
        )
        _failed_event(tenant)
        assert deliveries_send_due(budget_seconds=10) == 1
        NotificationDelivery.objects.update(next_attempt_at=NotificationDelivery.objects.get().created_at)
        assert deliveries_send_due(budget_seconds=10) == 1
        assert len(endpoint.requests) == 2
    delivery = NotificationDelivery.objects.get()
    assert (delivery.status, delivery.response_code) == ("failed", 500)
    assert delivery.last_error == "HTTP 500: the endpoint failed"
    assert [entry["error"] for entry in delivery.attempt_log] == ["HTTP 500: the endpoint failed"] * 2
    assert LEAK not in json.dumps([delivery.last_error, delivery.attempt_log])


def test_a_webhook_to_loopback_is_refused_unless_opened(tenant: Any) -> None:
    """A tenant admin's allow rule for 127.0.0.1 lists the host; the address stays closed
    until the operator or a superuser opens it."""
    with _leaky(200) as endpoint:
        subscribe(
            tenant=tenant, kinds=[Kind.FAILED], channel=Channel.WEBHOOK, destination=f"{endpoint.url}/hook"
        )
        OutboundAllowRule.objects.filter(tenant=tenant).update(opens_special=False)
        _failed_event(tenant)
        deliveries_send_due(budget_seconds=10)
        assert endpoint.requests == []
    delivery = NotificationDelivery.objects.get()
    assert delivery.status == "failed" and "is a loopback address" in delivery.last_error
