"""Signed approval links (docs/notifications.md#approval-links): the link of an
approval_requested notification opens the approval page behind login, once, for a limited
time, and grants no right of its own."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from django.core import mail, signing
from django.test import Client
from django.utils import timezone

from approvals.models import ApprovalLinkUse
from approvals.services import approval_request
from approvals.tasks import forget_spent_links
from execution.enums import Role
from execution.models import ExecutionEvent
from monitoring.notifications.deliver import deliveries_send_due
from monitoring.notifications.dispatch import notifications_dispatch
from monitoring.notifications.models import Channel, Kind, NotificationDelivery
from opsconductor.schedules import SCHEDULES
from tests.approvals.conftest import ensure_policies, plan_for
from tests.approvals.test_gate_doors import waiting_gate
from tests.factories import ExecutionFactory, TenantFactory
from tests.monitoring.notifications.helpers import person, personas, subscribe

pytestmark = pytest.mark.django_db
LINK = re.compile(r"https?://[^\s\"<>|]+/approvals/link/[^\s\"<>|]+/")


def _mailed_links(tenant: Any, people: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    """A pending approval and the link each approver's approval_requested mail carries, by
    address (the real path: dispatch, masked delivery rows, sent messages)."""
    ensure_policies()
    subscribe(
        tenant=tenant, kinds=[Kind.APPROVAL_REQUESTED], channel=Channel.EMAIL, destination="x@example.test"
    )
    execution = ExecutionFactory(
        tenant=tenant, actor=people["requester"], plan_snapshot=plan_for(), environment="staging"
    )
    approval = approval_request(execution=execution, level=1)
    event = ExecutionEvent.objects.filter(execution=execution, event_type="approval_requested").latest("id")
    notifications_dispatch(event_id=event.pk)
    assert deliveries_send_due(budget_seconds=10) == len(mail.outbox)
    paths: dict[str, str] = {}
    for message in mail.outbox:
        [address] = message.to
        links = set(LINK.findall(message.body)) | set(LINK.findall(message.alternatives[0][0]))  # type: ignore[attr-defined]
        assert len(links) == 1, message.body
        paths[address] = urlsplit(links.pop()).path
    return approval, paths


def _mailed_link(tenant: Any, people: dict[str, Any]) -> tuple[Any, str]:
    """A pending approval and the link mailed to approver1."""
    approval, paths = _mailed_links(tenant, people)
    return approval, paths[people["approver1"].email]


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_link_opens_the_approval_page_behind_login_once(tenant: Any) -> None:
    people = personas(tenant)
    approval, path = _mailed_link(tenant, people)
    assert f"/approvals/{approval.approval_id}/" not in path  # the link is no bare page address
    anonymous = Client().get(path)
    assert anonymous.status_code == 302
    assert anonymous["Location"] == f"/accounts/login/?next={quote(path)}"
    assert not ApprovalLinkUse.objects.exists()  # logging in first spends nothing
    opened = _client(people["approver1"]).get(path, follow=True)
    assert opened.redirect_chain == [(f"/approvals/{approval.approval_id}/", 302)]
    assert opened.status_code == 200 and 'id="vote-form"' in opened.content.decode()
    used = ApprovalLinkUse.objects.get()
    assert (used.approval_id, used.used_by) == (approval.approval_id, people["approver1"])
    again = _client(people["approver1"]).get(path)
    assert again.status_code == 410
    assert "used already" in again.content.decode()
    assert _client(people["approver2"]).get(path).status_code == 404  # not their link


def test_each_approver_is_mailed_a_link_of_their_own_and_both_open(tenant: Any) -> None:
    # One message to all approvers carried one single-use link: the first approver who
    # opened it spent it, and the others got a 410.
    people = personas(tenant)
    approval, paths = _mailed_links(tenant, people)
    ada, bob = people["approver1"], people["approver2"]
    assert sorted(paths) == sorted([ada.email, bob.email])
    assert len(mail.outbox) == 2  # one message per recipient
    deliveries = NotificationDelivery.objects.filter(kind=Kind.APPROVAL_REQUESTED)
    assert sorted(deliveries.values_list("recipient_id", "destination")) == sorted(
        [(ada.pk, ada.email), (bob.pk, bob.email)]
    )
    assert paths[ada.email] != paths[bob.email]
    for user in (ada, bob):
        opened = _client(user).get(paths[user.email])
        assert opened.status_code == 302, user
        assert opened["Location"] == f"/approvals/{approval.approval_id}/"
    assert sorted(ApprovalLinkUse.objects.values_list("used_by", flat=True)) == sorted([ada.pk, bob.pk])
    for user in (ada, bob):  # each link is single-use for its person
        assert _client(user).get(paths[user.email]).status_code == 410


def test_a_link_opened_by_another_approver_is_a_404_and_stays_usable_by_its_own(tenant: Any) -> None:
    people = personas(tenant)
    approval, paths = _mailed_links(tenant, people)
    ada, bob = people["approver1"], people["approver2"]
    refused = _client(bob).get(paths[ada.email])  # bob may vote, but the link is ada's
    assert refused.status_code == 404
    assert not ApprovalLinkUse.objects.exists()
    opened = _client(ada).get(paths[ada.email])
    assert opened["Location"] == f"/approvals/{approval.approval_id}/"
    assert _client(ada).get(paths[ada.email]).status_code == 410


def test_a_repeated_dispatch_mails_each_approver_once(tenant: Any) -> None:
    people = personas(tenant)
    _mailed_links(tenant, people)
    event = ExecutionEvent.objects.filter(event_type="approval_requested").latest("id")
    assert notifications_dispatch(event_id=event.pk) == []
    assert NotificationDelivery.objects.count() == 2
    assert deliveries_send_due(budget_seconds=10) == 0
    assert len(mail.outbox) == 2


def test_a_tampered_link_is_a_400_page(tenant: Any) -> None:
    people = personas(tenant)
    _, path = _mailed_link(tenant, people)
    token = path.rstrip("/").rsplit("/", 1)[1]
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    client = _client(people["approver1"])
    for bad in (flipped, "not-a-token", token.split(":")[0]):
        answer = client.get(f"/approvals/link/{bad}/")
        assert answer.status_code == 400, bad
        assert "not valid" in answer.content.decode()
    # A token signed with another salt (another of our signed values) does not open either.
    other = signing.TimestampSigner(salt="something-else").sign_object({"a": "x", "n": "y"})
    assert client.get(f"/approvals/link/{other}/").status_code == 400
    assert not ApprovalLinkUse.objects.exists()


def test_an_expired_link_is_a_410_page(tenant: Any, monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    people = personas(tenant)
    settings.APPROVAL_LINK_MAX_AGE_SECONDS = 3600
    real = time.time
    monkeypatch.setattr(signing.time, "time", lambda: real() - 3700)  # mailed 3700 s ago
    _, path = _mailed_link(tenant, people)
    monkeypatch.setattr(signing.time, "time", real)
    answer = _client(people["approver1"]).get(path)
    assert answer.status_code == 410
    assert "expired" in answer.content.decode()
    assert not ApprovalLinkUse.objects.exists()
    settings.APPROVAL_LINK_MAX_AGE_SECONDS = 7200  # the same link within the age allowed opens
    assert _client(people["approver1"]).get(path).status_code == 302


def test_a_link_grants_no_right_to_another_tenants_user(tenant: Any) -> None:
    people = personas(tenant)
    approval, path = _mailed_link(tenant, people)
    stranger = person(TenantFactory(slug="elsewhere"), "eve-elsewhere", Role.ADMIN)
    assert _client(stranger).get(path).status_code == 404  # as the page answers them
    assert not ApprovalLinkUse.objects.exists()  # their try did not spend it
    opened = _client(people["approver1"]).get(path)
    assert opened["Location"] == f"/approvals/{approval.approval_id}/"


def test_a_webhook_and_a_gates_mail_carry_a_link_to_the_gate(tenant: Any) -> None:
    # A gate's approval_requested linked the execution page, not the gate to vote on.
    people = personas(tenant)
    subscribe(
        tenant=tenant,
        kinds=[Kind.APPROVAL_REQUESTED],
        channel=Channel.WEBHOOK,
        destination="http://127.0.0.1:9/",
    )
    gate = waiting_gate(tenant, people["requester"], message="canary ok?")
    event = ExecutionEvent.objects.filter(execution=gate.execution, event_type="approval_requested").latest(
        "id"
    )
    [delivery] = notifications_dispatch(event_id=event.pk)
    assert NotificationDelivery.objects.count() == 1
    body = json.loads(delivery.body)
    path = urlsplit(body["url"]).path
    assert path.startswith("/approvals/link/") and f"<{body['url']}|open>" in body["text"]
    opened = _client(people["approver1"]).get(path)
    assert opened["Location"] == f"/approvals/{gate.approval_id}/"


def test_spent_nonces_are_forgotten_once_their_links_are_past_their_age(tenant: Any, settings: Any) -> None:
    assert "approvals.tasks.forget_spent_links" in {job.func for job in SCHEDULES}
    people = personas(tenant)
    _, path = _mailed_link(tenant, people)
    assert _client(people["approver1"]).get(path).status_code == 302
    settings.APPROVAL_LINK_MAX_AGE_SECONDS = 3600
    assert forget_spent_links() == 0  # spent just now: kept (the link is still young)
    ApprovalLinkUse.objects.update(used_at=timezone.now() - timedelta(seconds=3601))
    assert forget_spent_links() == 1
    assert not ApprovalLinkUse.objects.exists()
