"""Notifications in-process: which events notify whom, what is sent, how failures are recorded.

The worker path (django-q2 tasks in real ``qcluster`` processes, a loopback SMTP server and a
webhook receiver) is in test_workers.py; here the services run in the test process against
Django's locmem mail backend and a loopback HTTP receiver.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from approvals.services import approval_request
from execution.enums import ActorType, ExecutionStatus, Role
from execution.models import ExecutionEvent
from execution.services.events import event_record
from execution.services.transition import transition
from monitoring.notifications.deliver import deliveries_send_due
from monitoring.notifications.dispatch import notifications_dispatch
from monitoring.notifications.kinds import notification_kind
from monitoring.notifications.models import Channel, Kind, NotificationDelivery
from monitoring.notifications.publisher import notification_publish
from tests.approvals.conftest import ensure_policies, plan_for
from tests.factories import ExecutionEventFactory, ExecutionFactory, TenantFactory
from tests.monitoring.notifications.helpers import TimedReceiver, personas, subscribe, verifies

pytestmark = pytest.mark.django_db


def _pending_execution(tenant: Any, requester: Any, environment: str = "staging") -> Any:
    ensure_policies()
    plan = plan_for(environment=environment)
    return ExecutionFactory(
        tenant=tenant, actor=requester, plan_snapshot=plan, environment=environment, action_class="modify"
    )


def _event(execution: Any, event_type: str) -> ExecutionEvent:
    return ExecutionEvent.objects.filter(execution=execution, event_type=event_type).latest("id")


@pytest.mark.parametrize(
    ("event_type", "to_status", "actor_type", "kind", "step_index"),
    [
        ("approval_requested", None, ActorType.SYSTEM, "approval_requested", None),
        ("approved", "approved", ActorType.USER, "approved", None),
        ("approved", "approved", ActorType.SYSTEM, None, None),  # a level-0 plan approved by the system
        ("rejected", "rejected", ActorType.SYSTEM, "rejected", None),
        ("failed", "failed", ActorType.WORKER, "failed", None),
        ("plan_tampered", "failed", ActorType.WORKER, "failed", None),
        ("timeout", "timeout", ActorType.WORKER, "timeout", None),
        ("dead_lettered", None, ActorType.WORKER, "dead_lettered", None),
        ("sla_violation", None, ActorType.SYSTEM, "sla_violation", None),
        ("completed", "completed", ActorType.WORKER, None, None),
        ("step_output", None, ActorType.WORKER, None, None),
        ("step_failed", "failed", ActorType.WORKER, None, 0),  # one attempt's step, not the execution
    ],
)
def test_notification_kind_of_each_event(
    event_type: str, to_status: Any, actor_type: str, kind: Any, step_index: Any
) -> None:
    event = ExecutionEvent(
        event_type=event_type, to_status=to_status, actor_type=actor_type, step_index=step_index
    )
    assert notification_kind(event) == kind


def test_approval_mail_goes_to_exactly_the_users_who_may_vote(tenant: Any) -> None:
    people = personas(tenant)
    other = TenantFactory(slug="other")
    from tests.monitoring.notifications.helpers import person

    person_elsewhere = person(other, "eve-elsewhere", Role.APPROVER)  # an approver of another tenant
    assert person_elsewhere.email
    subscribe(
        tenant=tenant,
        kinds=[Kind.APPROVAL_REQUESTED, Kind.FAILED],
        channel=Channel.EMAIL,
        destination="oncall@example.test",
    )
    execution = _pending_execution(tenant, people["requester"])
    approval_request(execution=execution, level=1)
    notifications_dispatch(event_id=_event(execution, "approval_requested").pk)
    assert deliveries_send_due(budget_seconds=10) == 2  # one message per approver
    assert len(mail.outbox) == 2
    assert sorted(m.to[0] for m in mail.outbox if len(m.to) == 1) == [
        "ada-approver@example.test",
        "bob-approver@example.test",
    ]
    message = mail.outbox[0]
    assert "restart nginx on web-1" in message.subject
    html = message.alternatives[0][0]  # type: ignore[attr-defined]
    # The signed link to the approval page (docs/notifications.md#approval-links), the same in both.
    link = re.search(r"http://\S+/approvals/link/[^\s\"<>]+/", message.body)
    assert link is not None and link.group(0) in html
    for delivery in NotificationDelivery.objects.all():
        assert (delivery.status, delivery.attempts, delivery.response_code) == ("delivered", 1, 250)


def test_an_approvers_address_that_is_not_one_valid_address_gets_no_mail(tenant: Any) -> None:
    """An identity provider's e-mail claim reaches the account unvalidated: one with a comma
    added a recipient outside the tenant to the approval mail, one the envelope cannot hold
    failed the mail for every approver. Such an approver gets no mail; the others do."""
    from tests.monitoring.notifications.helpers import person

    people = personas(tenant)
    for username, email in (("carl-approver", "carl@corp.test,thief@evil.test"), ("dan-approver", "dan@a@b")):
        person(tenant, username, Role.APPROVER).__class__.objects.filter(username=username).update(
            email=email
        )
    subscribe(
        tenant=tenant, kinds=[Kind.APPROVAL_REQUESTED], channel=Channel.EMAIL, destination="x@example.test"
    )
    execution = _pending_execution(tenant, people["requester"])
    approval_request(execution=execution, level=1)
    notifications_dispatch(event_id=_event(execution, "approval_requested").pk)
    assert deliveries_send_due(budget_seconds=10) == 2  # one message per approver
    assert set(NotificationDelivery.objects.values_list("status", flat=True)) == {"delivered"}
    assert sorted(address for m in mail.outbox for address in m.recipients()) == [
        "ada-approver@example.test",
        "bob-approver@example.test",
    ]


def test_a_dispatch_records_one_delivery_per_subscription_and_event_even_when_repeated(tenant: Any) -> None:
    people = personas(tenant)
    subscribe(tenant=tenant, kinds=[Kind.FAILED], channel=Channel.EMAIL, destination="a@example.test")
    subscribe(tenant=tenant, kinds=[Kind.FAILED], channel=Channel.EMAIL, destination="b@example.test")
    subscribe(
        tenant=tenant,
        kinds=[Kind.FAILED],
        channel=Channel.EMAIL,
        destination="c@example.test",
        environment="prod",
    )
    subscribe(tenant=tenant, kinds=[Kind.TIMEOUT], channel=Channel.EMAIL, destination="d@example.test")
    execution = _pending_execution(tenant, people["requester"])
    event = ExecutionEventFactory(execution=execution, event_type="failed", to_status="failed")
    assert len(notifications_dispatch(event_id=event.pk)) == 2  # staging: not the prod-only one
    assert notifications_dispatch(event_id=event.pk) == []  # a repeated task records nothing
    deliveries_send_due(budget_seconds=10)
    assert sorted(m.to[0] for m in mail.outbox) == ["a@example.test", "b@example.test"]


def test_webhook_body_is_signed_slack_compatible_and_masked(tenant: Any) -> None:
    people = personas(tenant)
    canary = "Zq8vCanaryValue0815xYz"
    with TimedReceiver(200) as receiver:
        subscribe(
            tenant=tenant, kinds=[Kind.FAILED], channel=Channel.WEBHOOK, destination=receiver.url + "/hook"
        )
        execution = _pending_execution(tenant, people["requester"])
        transition(execution, ExecutionStatus.APPROVED, actor_type=ActorType.SYSTEM)
        transition(execution, ExecutionStatus.RUNNING, actor_type=ActorType.WORKER)
        reason = f"step 1 failed: curl -H 'Authorization: Bearer {canary}' exited 22"
        transition(execution, ExecutionStatus.FAILED, actor_type=ActorType.WORKER, reason=reason)
        notifications_dispatch(event_id=_event(execution, "failed").pk)
        deliveries_send_due(budget_seconds=10)
    [request] = receiver.requests
    assert verifies(request["body"], request["headers"]["X-OpsConductor-Signature"])
    assert not verifies(request["body"] + b" ", request["headers"]["X-OpsConductor-Signature"])
    document = json.loads(request["body"])
    assert document["kind"] == "failed" and document["execution_id"] == str(execution.execution_id)
    assert document["text"].startswith("[acme/staging] failed: restart nginx on web-1")
    assert f"/executions/{execution.execution_id}/" in document["text"]
    assert canary not in request["body"].decode()
    delivery = NotificationDelivery.objects.get()
    assert canary not in delivery.body and delivery.response_code == 200


def test_a_failing_webhook_is_recorded_and_retried_later_with_growing_delays(
    tenant: Any, settings: Any
) -> None:
    settings.NOTIFY_RETRY_BASE_SECONDS = 10
    settings.NOTIFY_MAX_ATTEMPTS = 3
    people = personas(tenant)
    with TimedReceiver(500) as receiver:
        subscribe(tenant=tenant, kinds=[Kind.FAILED], channel=Channel.WEBHOOK, destination=receiver.url)
        execution = _pending_execution(tenant, people["requester"])
        event = ExecutionEventFactory(execution=execution, event_type="failed", to_status="failed")
        notifications_dispatch(event_id=event.pk)
        assert deliveries_send_due(budget_seconds=10) == 1  # the retry is not due yet
        delivery = NotificationDelivery.objects.get()
        assert (delivery.status, delivery.attempts, delivery.response_code) == ("retrying", 1, 500)
        for _ in range(2):  # pretend the back-off ended
            NotificationDelivery.objects.update(next_attempt_at=delivery.created_at)
            assert deliveries_send_due(budget_seconds=10) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, len(receiver.requests)) == ("failed", 3, 3)
    delays = [entry["next_in_seconds"] for entry in delivery.attempt_log if "next_in_seconds" in entry]
    assert len(delays) == 2 and 10 <= delays[0] < 12.5 <= 20 <= delays[1]
    assert "HTTP 500" in delivery.last_error


def test_a_webhook_host_off_the_allow_list_fails_without_a_request(tenant: Any) -> None:
    people = personas(tenant)
    with TimedReceiver(200) as receiver:
        subscribe(tenant=tenant, kinds=[Kind.FAILED], channel=Channel.WEBHOOK, destination=receiver.url)
        tenant.outboundallowrule_set.all().delete() if hasattr(tenant, "outboundallowrule_set") else None
        from execution.models import OutboundAllowRule

        OutboundAllowRule.objects.filter(tenant=tenant).delete()
        execution = _pending_execution(tenant, people["requester"])
        event = ExecutionEventFactory(execution=execution, event_type="failed", to_status="failed")
        notifications_dispatch(event_id=event.pk)
        deliveries_send_due(budget_seconds=10)
    assert receiver.requests == []
    delivery = NotificationDelivery.objects.get()
    assert delivery.status == "failed" and "allow-list" in delivery.last_error


def test_the_publisher_queues_a_task_only_for_subscribed_kinds(tenant: Any) -> None:
    from django_q.models import OrmQ

    people = personas(tenant)
    execution = _pending_execution(tenant, people["requester"])
    failed = ExecutionEventFactory(execution=execution, event_type="failed", to_status="failed")
    output = ExecutionEventFactory(execution=execution, event_type="step_output")
    with CaptureQueriesContext(connection) as queries:
        notification_publish(output)
    assert len(queries) == 0  # an event that notifies nobody costs no query
    notification_publish(failed)
    assert OrmQ.objects.count() == 0  # nobody subscribed: one query, no task
    subscribe(tenant=tenant, kinds=[Kind.FAILED], channel=Channel.EMAIL, destination="a@example.test")
    with CaptureQueriesContext(connection) as queries:
        notification_publish(failed)
    assert len(queries) == 2  # the subscription check and the task's row
    assert OrmQ.objects.count() == 1


def test_events_reach_the_publisher_through_the_one_choke_point(
    tenant: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from django_q.models import OrmQ

    people = personas(tenant)
    subscribe(tenant=tenant, kinds=[Kind.DEAD_LETTERED], channel=Channel.EMAIL, destination="a@example.test")
    execution = _pending_execution(tenant, people["requester"])
    with django_capture_on_commit_callbacks(execute=True):
        event_record(execution=execution, event_type="dead_lettered", actor_type=ActorType.WORKER)
    assert OrmQ.objects.count() == 1
