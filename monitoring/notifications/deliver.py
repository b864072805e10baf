"""Sending deliveries: claim the due ones, send with short timeouts, record every attempt.

A claim is a lease: it pushes ``next_attempt_at`` forward past the longest an attempt may
take, so a worker that dies mid-send leaves the delivery to be claimed again later.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import cast

import requests
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import sanitize_address
from django.db import connection, transaction
from django.utils import timezone

from execution.masking import mask_text
from execution.models import Execution
from execution.outbound import OutboundRefused, OutboundUnresolved, check_url, guarded_session, pinned
from execution.secrets.crypto import decrypt
from monitoring.notifications.models import Channel, NotificationDelivery, NotificationSubscription
from opsconductor import telemetry

logger = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-OpsConductor-Signature"

# Due deliveries, oldest due first, skipping those another worker holds (index notif_delivery_due).
CLAIM_SQL = """
WITH due AS (
    SELECT id FROM notification_deliveries
    WHERE status IN ('pending', 'retrying') AND next_attempt_at <= clock_timestamp()
    ORDER BY next_attempt_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE notification_deliveries d
SET attempts = d.attempts + 1, last_attempt_at = now(), updated_at = now(),
    next_attempt_at = now() + make_interval(secs => %(lease)s)
FROM due WHERE d.id = due.id
RETURNING d.id
"""


@dataclass(frozen=True)
class Outcome:
    ok: bool
    response_code: int | None = None
    error: str = ""
    permanent: bool = False  # retrying cannot help (host not allowed, no recipient)


def signature(*, secret: str, body: bytes) -> str:
    """The ``X-OpsConductor-Signature`` value: ``sha256=`` + hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def retry_delay_seconds(attempt: int) -> float:
    """base * 2^(attempt-1), capped, plus up to 25 % jitter (so delays always grow)."""
    delay = min(
        settings.NOTIFY_RETRY_MAX_SECONDS, settings.NOTIFY_RETRY_BASE_SECONDS * 2 ** max(0, attempt - 1)
    )
    return delay + random.uniform(0, delay / 4)


def _status_reason(code: int) -> str:
    """Our own words for an answer that is not 2xx: the endpoint's body is its own, may echo
    anything (an internal page, our secret) and is never kept."""
    if 300 <= code < 400:
        return "a redirect, not followed (a redirect could leave the allow-list)"
    if code in (401, 403):
        return "the endpoint refused our credentials or signature"
    if code == 404:
        return "no such endpoint"
    if code == 429:
        return "the endpoint asks us to slow down"
    if 400 <= code < 500:
        return "the endpoint refused the delivery"
    return "the endpoint failed"


def _error_reason(error: requests.RequestException, timeout: float) -> str:
    """Our own words for a failed send: requests' messages repeat the URL, whose path may be
    the webhook's secret (Slack-style hooks)."""
    if isinstance(error, requests.Timeout):
        return f"no answer within {timeout:g}s"
    if isinstance(error, requests.exceptions.SSLError):
        return "TLS failed (certificate or handshake)"
    if isinstance(error, requests.ConnectionError):
        return "connection failed (refused, reset or unreachable)"
    return f"the request failed ({type(error).__name__})"


def _send_webhook(delivery: NotificationDelivery) -> Outcome:
    """One POST to the subscription's URL through the outbound guard (docs/notifications.md):
    a refused URL is a failed delivery with the guard's reason and nothing is sent; the
    request goes to the address the guard checked and follows no redirect."""
    url = delivery.destination
    # A webhook delivers an event to a subscription: both are set (the constraint
    # notif_delivery_of_event_or_notice; a membership notice is e-mail only).
    subscription = cast(NotificationSubscription, delivery.subscription)
    environment = (
        Execution.objects.filter(execution_id=cast(uuid.UUID, delivery.execution_id))
        .values_list("environment", flat=True)
        .first()
        or ""
    )
    try:
        checked = check_url(url, tenant=delivery.tenant.slug, environment=environment)
    except OutboundRefused as refused:
        return Outcome(ok=False, error=f"not sent: {refused}", permanent=True)
    except OutboundUnresolved as unresolved:
        return Outcome(ok=False, error=f"not sent: {unresolved}")
    body = delivery.body.encode()
    secret = decrypt(subscription.secret_ciphertext) if subscription.secret_ciphertext else ""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "OpsConductor-Notifications/1",
        "X-OpsConductor-Event": delivery.kind,
        "X-OpsConductor-Delivery": str(delivery.pk),
        SIGNATURE_HEADER: signature(secret=secret, body=body),
    }
    timeout = settings.NOTIFY_TIMEOUT_SECONDS
    with guarded_session(pinned(checked)) as session:
        try:
            # Under the execution's trace: the request carries its traceparent (docs/telemetry.md).
            with telemetry.execution_context(delivery.execution_id):
                response = session.post(
                    url,
                    data=body,
                    headers=headers,
                    timeout=(timeout, timeout),
                    allow_redirects=False,
                    stream=True,
                )
            response.close()  # the body is never read
        except requests.RequestException as error:
            return Outcome(ok=False, error=_error_reason(error, timeout))
    if 200 <= response.status_code < 300:
        return Outcome(ok=True, response_code=response.status_code)
    return Outcome(
        ok=False,
        response_code=response.status_code,
        error=f"HTTP {response.status_code}: {_status_reason(response.status_code)}",
    )


def _send_email(delivery: NotificationDelivery) -> Outcome:
    recipients = [address.strip() for address in delivery.destination.split(",") if address.strip()]
    if not recipients:
        return Outcome(
            ok=False, error="no recipient: nobody with an e-mail address may receive it", permanent=True
        )
    try:
        message = EmailMultiAlternatives(
            subject=delivery.subject,
            body=delivery.body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=recipients,
        )
        if delivery.html_body:
            message.attach_alternative(delivery.html_body, "text/html")
        # Built here, before any connection, message and envelope as the SMTP backend builds
        # them: what Django refuses to build (a line break in a header, BadHeaderError; an
        # address the envelope cannot hold, "a@b@c", "<>", "a@[1.2"; text that is no
        # Unicode) fails the same way on every attempt, so it is a failed delivery now, with
        # the reason, not five retries into the same error.
        message.message()
        encoding = message.encoding or settings.DEFAULT_CHARSET
        for address in (message.from_email, *message.recipients()):
            sanitize_address(address, encoding)
    except Exception as error:  # any error of building is the message's: it never sends
        return Outcome(
            ok=False, error=f"the message could not be built: {type(error).__name__}: {error}", permanent=True
        )
    try:
        message.send(fail_silently=False)  # the SMTP backend honours EMAIL_TIMEOUT
    except Exception as error:  # smtplib, socket and backend errors all mean "try again later"
        return Outcome(ok=False, error=f"{type(error).__name__}: {error}")
    return Outcome(ok=True, response_code=250)


def delivery_attempt(*, delivery: NotificationDelivery) -> Outcome:
    """Send one claimed delivery and record the attempt (status, code, masked error, next try)."""
    sender = _send_email if delivery.channel == Channel.EMAIL else _send_webhook
    try:
        outcome = sender(delivery)
    except Exception as error:  # a bug in one delivery must not stop the others
        logger.exception("delivery %s crashed", delivery.pk)
        outcome = Outcome(ok=False, error=f"{type(error).__name__}: {error}")
    now = timezone.now()
    masked_error = mask_text(outcome.error)[:2000]
    entry: dict[str, object] = {
        "at": now.isoformat(),
        "response_code": outcome.response_code,
        "error": masked_error,
    }
    fields: dict[str, object] = {
        "response_code": outcome.response_code,
        "last_error": masked_error,
        "updated_at": now,
    }
    if outcome.ok:
        fields.update(status=NotificationDelivery.Status.DELIVERED, delivered_at=now, next_attempt_at=None)
    elif outcome.permanent or delivery.attempts >= delivery.max_attempts:
        fields.update(status=NotificationDelivery.Status.FAILED, next_attempt_at=None)
    else:
        delay = retry_delay_seconds(delivery.attempts)
        entry["next_in_seconds"] = round(delay, 3)
        fields.update(
            status=NotificationDelivery.Status.RETRYING,
            next_attempt_at=now + timedelta(seconds=delay),
        )
    fields["attempt_log"] = [*delivery.attempt_log, entry]
    # Compare-and-swap on the attempt number: a claim that lost its lease records nothing.
    NotificationDelivery.objects.filter(pk=delivery.pk, attempts=delivery.attempts).update(**fields)
    return outcome


def deliveries_claim(*, limit: int) -> list[NotificationDelivery]:
    lease = settings.NOTIFY_TIMEOUT_SECONDS * 2 + settings.EMAIL_TIMEOUT + 30
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(CLAIM_SQL, {"limit": limit, "lease": lease})
        ids = [row[0] for row in cursor.fetchall()]
    return list(
        NotificationDelivery.objects.select_related("subscription", "tenant")
        .filter(pk__in=ids)
        .order_by("id")
    )


def deliveries_send_due(*, budget_seconds: float = 20.0) -> int:
    """Send due deliveries until none is due or the budget is spent; returns attempts made.

    One claim per delivery: a lease then covers one send only, never a queue of them.
    """
    deadline = time.monotonic() + budget_seconds
    attempts = 0
    while time.monotonic() < deadline:
        claimed = deliveries_claim(limit=1)
        if not claimed:
            break
        delivery_attempt(delivery=claimed[0])
        attempts += 1
    return attempts
