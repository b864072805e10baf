"""Mail and names (docs/contract.md "Mail and names"): user-written text reaches a header as
one line of printable text, and a message that cannot be built is a failed delivery."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail

from monitoring.notifications.deliver import deliveries_send_due
from monitoring.notifications.dispatch import notifications_dispatch
from monitoring.notifications.models import Channel, Kind, NotificationDelivery
from monitoring.notifications.render import SUBJECT_MAX, header_line
from tests.approvals.conftest import ensure_policies, plan_for
from tests.factories import ExecutionEventFactory, ExecutionFactory
from tests.monitoring.notifications.helpers import personas, subscribe
from tests.support.smtpd import LoopbackSmtpd

pytestmark = pytest.mark.django_db


def _failed_execution(tenant: Any, plan_name: str) -> Any:
    people = personas(tenant)
    ensure_policies()
    plan = plan_for(environment="staging")
    plan["name"] = plan_name
    execution = ExecutionFactory(
        tenant=tenant, actor=people["requester"], plan_snapshot=plan, environment="staging"
    )
    return ExecutionEventFactory(execution=execution, event_type="failed", to_status="failed")


def test_a_plan_name_with_a_line_break_is_mailed_with_a_one_line_subject(tenant: Any) -> None:
    subscribe(tenant=tenant, kinds=[Kind.FAILED], channel=Channel.EMAIL, destination="oncall@example.test")
    event = _failed_execution(tenant, "nightly\r\nBcc: thief@evil.test\u2028\u202eyalp")
    notifications_dispatch(event_id=event.pk)
    assert deliveries_send_due(budget_seconds=10) == 1
    delivery = NotificationDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("delivered", 1, "")
    [message] = mail.outbox
    assert message.recipients() == ["oncall@example.test"]
    subject = message.message()["Subject"]
    assert "\r" not in subject and "\n" not in subject and "\u202e" not in subject
    assert subject.endswith("failed: nightly Bcc: thief@evil.test yalp")
    assert message.message()["Bcc"] is None


def test_a_long_plan_name_is_capped_in_the_subject(tenant: Any) -> None:
    subscribe(tenant=tenant, kinds=[Kind.FAILED], channel=Channel.EMAIL, destination="oncall@example.test")
    event = _failed_execution(tenant, "x" * 200)
    notifications_dispatch(event_id=event.pk)
    subject = NotificationDelivery.objects.get().subject
    assert len(subject) <= SUBJECT_MAX and subject.endswith("x\u2026") and subject.count("x") < 200


def test_a_message_that_cannot_be_built_is_a_failed_delivery_at_once(tenant: Any) -> None:
    """A delivery row stored with a broken header (an address with a line break, or a subject
    recorded before headers were made one line) fails on its first attempt with our reason;
    it is never retried into the same refusal nor dropped without a record."""
    subscribe(tenant=tenant, kinds=[Kind.FAILED], channel=Channel.EMAIL, destination="oncall@example.test")
    event = _failed_execution(tenant, "nightly")
    notifications_dispatch(event_id=event.pk)
    NotificationDelivery.objects.update(subject="nightly\r\nBcc: thief@evil.test")
    assert deliveries_send_due(budget_seconds=10) == 1
    delivery = NotificationDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 1, None)
    assert delivery.last_error.startswith("the message could not be built: BadHeaderError")
    assert delivery.attempt_log[0]["error"] == delivery.last_error
    assert mail.outbox == []


@pytest.mark.parametrize(
    ("value", "limit", "expected"),
    [
        ("plain name", 50, "plain name"),
        ("a\r\nb\tc\x00d\x1be\x85f", 50, "a b c d e f"),
        ("ab\u200b\u202ecd\ufeff", 50, "abcd"),  # zero-width and bidi controls are dropped
        ("  spaced   out  ", 50, "spaced out"),
        ("abcdefghij", 5, "abcd\u2026"),
        ("Überprüfung ✓ 重启", 50, "Überprüfung ✓ 重启"),  # printable non-ASCII stays
    ],
)
def test_header_line_keeps_one_line_of_printable_text(value: str, limit: int, expected: str) -> None:
    assert header_line(value, limit) == expected


@pytest.mark.parametrize("address", ["ada@corp@evil.test", "<>", "ada@[10.0.0.1", "ada@"])
def test_an_address_the_envelope_cannot_hold_is_a_failed_delivery_at_once(
    tenant: Any, settings: Any, address: str
) -> None:
    """The SMTP backend builds the envelope when it sends: an address it cannot put there
    (here an approver's e-mail as an identity provider's claim set it, which nothing
    validates) was "try again later", five retries into the same error. Now it fails on the
    first attempt with our reason, and the real SMTP server on loopback receives nothing."""
    subscribe(tenant=tenant, kinds=[Kind.FAILED], channel=Channel.EMAIL, destination="oncall@example.test")
    event = _failed_execution(tenant, "nightly")
    notifications_dispatch(event_id=event.pk)
    NotificationDelivery.objects.update(destination=f"ada@example.test,{address}")
    with LoopbackSmtpd() as smtpd:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtpd.port
        assert deliveries_send_due(budget_seconds=10) == 1
        received = smtpd.snapshot()
    delivery = NotificationDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 1, None)
    assert delivery.last_error.startswith("the message could not be built: "), delivery.last_error
    assert received == []


def test_a_good_message_still_reaches_the_smtp_server(tenant: Any, settings: Any) -> None:
    """The control for the test above: the same server receives a message it can build."""
    subscribe(tenant=tenant, kinds=[Kind.FAILED], channel=Channel.EMAIL, destination="oncall@example.test")
    notifications_dispatch(event_id=_failed_execution(tenant, "nightly").pk)
    with LoopbackSmtpd() as smtpd:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtpd.port
        assert deliveries_send_due(budget_seconds=10) == 1
        received = smtpd.snapshot()
    assert NotificationDelivery.objects.get().status == "delivered"
    assert [r.rcpt_tos for r in received] == [["oncall@example.test"]]
