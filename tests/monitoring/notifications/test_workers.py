"""Notifications delivered by real worker processes (``manage.py qcluster``) to a loopback SMTP
server (aiosmtpd) and a loopback webhook receiver."""

from __future__ import annotations

import json
import secrets
import string
import time
from typing import Any

import pytest
from django.utils import timezone

from approvals.services import approval_request, approval_vote
from execution.models import Execution
from execution.secrets.store import secret_set
from monitoring.notifications.models import Channel, Kind, NotificationDelivery
from tests.approvals.conftest import ensure_policies
from tests.execution.engine.helpers import enqueue, make_execution, wait_until, worker_cluster
from tests.factories import LocalAssetFactory
from tests.monitoring.notifications.helpers import TimedReceiver, personas, subscribe, verifies
from tests.support.smtpd import LoopbackSmtpd

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

FAST_RETRIES = {"OPS_RETRY_BACKOFF_BASE_SECONDS": "0.2", "OPS_REAPER_INTERVAL_SECONDS": "1"}


def _delivered(count: int) -> bool:
    rows = list(NotificationDelivery.objects.values_list("status", flat=True))
    return len(rows) == count and all(s in ("delivered", "failed") for s in rows)


def _wait_delivered(count: int, timeout: float) -> None:
    try:
        wait_until(lambda: _delivered(count), timeout, interval=0.5, what=f"{count} deliveries")
    except AssertionError as error:
        rows = NotificationDelivery.objects.values("kind", "channel", "status", "attempts", "last_error")
        raise AssertionError(f"{error}: {list(rows)}") from None


def test_each_event_reaches_each_subscription_once_signed_masked_and_only_to_voters(tenant: Any) -> None:
    ensure_policies()
    people = personas(tenant)
    canary = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
    secret_set(tenant=tenant, path="acme/canary", value=canary)
    with LoopbackSmtpd() as smtpd, TimedReceiver(200) as receiver:
        subscribe(
            tenant=tenant,
            kinds=[Kind.APPROVAL_REQUESTED, Kind.FAILED],
            channel=Channel.EMAIL,
            destination="oncall@example.test",
        )
        subscribe(
            tenant=tenant,
            kinds=[Kind.APPROVAL_REQUESTED, Kind.FAILED, Kind.DEAD_LETTERED],
            channel=Channel.WEBHOOK,
            destination=receiver.url + "/hooks/ops",
        )
        env = {"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(smtpd.port), **FAST_RETRIES}
        with worker_cluster(workers=2, **env):
            waiting = make_execution(
                tenant=tenant, actor=people["requester"], steps=[{"type": "noop"}], approve=False
            )
            approval_request(execution=waiting, level=1)
            failing = make_execution(
                tenant=tenant,
                actor=people["requester"],
                steps=[
                    {
                        "name": "leak and fail",
                        "type": "command",
                        "target": {"asset_id": LocalAssetFactory(tenant=tenant).pk},
                        "params": {
                            "command": 'echo "token=$TOKEN"; echo "token=$TOKEN" >&2; exit 3',
                            "env": {"TOKEN": {"type": "secret", "path": "db:acme/canary"}},
                        },
                    }
                ],
            )
            enqueue(failing)
            # approval mail to each of the two approvers + failed mail; webhook:
            # approval_requested, failed (a failed step is no dead letter: docs/contract.md#truth).
            _wait_delivered(5, 180)
            time.sleep(3)  # anything sent twice would arrive now
    assert Execution.objects.get(pk=failing.pk).status == "failed"
    assert set(NotificationDelivery.objects.values_list("status", flat=True)) == {"delivered"}

    mails = smtpd.snapshot()
    assert len(mails) == 3
    approval_mails = [m for m in mails if "approval requested" in m.message["Subject"]]
    [failed_mail] = [m for m in mails if m not in approval_mails]
    assert sorted(address for m in approval_mails for address in m.rcpt_tos) == [
        "ada-approver@example.test",
        "bob-approver@example.test",
    ]
    assert failed_mail.rcpt_tos == ["oncall@example.test"]
    by_kind = {"approval": approval_mails[0], "failed": failed_mail}
    assert "/approvals/link/" in by_kind["approval"].part("text/plain")
    assert "/approvals/link/" in by_kind["approval"].part("text/html")
    assert f"/executions/{failing.execution_id}/" in by_kind["failed"].part("text/plain")

    hooks = receiver.requests
    assert len(hooks) == 2
    kinds = sorted(json.loads(h["body"])["kind"] for h in hooks)
    assert kinds == ["approval_requested", "failed"]
    assert len({json.loads(h["body"])["event_id"] for h in hooks}) == 2
    for hook in hooks:
        assert verifies(hook["body"], hook["headers"]["X-OpsConductor-Signature"])
        assert json.loads(hook["body"])["text"]
    approval_hook = next(json.loads(h["body"]) for h in hooks if b"approval_requested" in h["body"])
    assert approval_hook["approvers"] == ["ada-approver", "bob-approver"]

    for text in [m.data.decode(errors="replace") for m in mails] + [h["body"].decode() for h in hooks]:
        assert canary not in text
    for row in NotificationDelivery.objects.values(
        "body", "html_body", "subject", "last_error", "attempt_log"
    ):
        assert canary not in json.dumps(row, default=str)


def test_a_webhook_answering_500_is_retried_with_growing_delays_and_never_holds_up_executions(
    tenant: Any,
) -> None:
    ensure_policies()
    people = personas(tenant)
    env = {"NOTIFY_RETRY_BASE_SECONDS": "2", "NOTIFY_MAX_ATTEMPTS": "4", **FAST_RETRIES}
    with TimedReceiver(500) as receiver:
        subscribe(tenant=tenant, kinds=[Kind.APPROVED], channel=Channel.WEBHOOK, destination=receiver.url)
        with worker_cluster(workers=2, **env):
            approved = make_execution(
                tenant=tenant,
                actor=people["requester"],
                steps=[{"type": "sleep", "params": {"seconds": 1}}],
                approve=False,
            )
            approval = approval_request(execution=approved, level=1)
            others = [
                make_execution(
                    tenant=tenant,
                    actor=people["requester"],
                    steps=[{"type": "sleep", "params": {"seconds": 1}}],
                )
                for _ in range(4)
            ]
            approval_vote(approval=approval, voter=people["approver1"], decision="approve", comment="ok")
            for execution in others:
                enqueue(execution)
            wait_until(
                lambda: NotificationDelivery.objects.filter(status="failed").exists(), 120, what="4 attempts"
            )
    delivery = NotificationDelivery.objects.get()
    assert (delivery.attempts, delivery.response_code, len(receiver.arrivals)) == (4, 500, 4)
    gaps = [b - a for a, b in zip(receiver.arrivals, receiver.arrivals[1:], strict=False)]
    logged = [entry["next_in_seconds"] for entry in delivery.attempt_log if "next_in_seconds" in entry]
    # Back-off: each wait longer than the last, and no attempt before its time (a busy
    # worker pool may only make a gap longer than the wait it follows).
    assert len(logged) == 3 and logged == sorted(logged) and logged[0] < logged[-1], logged
    assert all(gap >= wait - 0.5 for gap, wait in zip(gaps, logged, strict=True)), (gaps, logged)
    # The executions went on regardless: the approved one finished before the endpoint was
    # tried a second time, and the others ran to completion meanwhile.
    second_attempt = timezone.datetime.fromisoformat(delivery.attempt_log[1]["at"])
    finished = Execution.objects.get(pk=approved.pk)
    assert finished.status == "completed" and finished.completed_at < second_attempt
    assert set(Execution.objects.filter(pk__in=[e.pk for e in others]).values_list("status", flat=True)) == {
        "completed"
    }
