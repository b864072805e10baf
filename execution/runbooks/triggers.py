"""Triggers (docs/runbooks.md#triggers): ``POST /api/v1/hooks/{id}/`` launches a runbook.

A delivery is signed: ``X-OpsConductor-Timestamp: <unix seconds>`` within 5 minutes of now
and ``X-OpsConductor-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`` with the
hook's secret. A bad or missing signature, an old or future timestamp: refused, nothing
stored. An accepted delivery keeps a row unique per signature (a replay is refused) that
also counts against the hook's rate limit. Values are read from the body by the mapping's
JSON pointers (RFC 6901); an Alertmanager body is one launch per firing alert, its
idempotency key made of the alert's fingerprint and start time, so a batch sent again
creates nothing new. Launches are ``runbook_launch`` as the hook's owner.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from execution import policy
from execution.clients.base import ServiceError
from execution.errors import DomainError
from execution.plans import PlanInvalid, Problem
from execution.runbooks.models import Runbook, RunbookTrigger, TriggerDelivery, TriggerFormat
from execution.runbooks.params import properties_of
from execution.runbooks.services import runbook_launch, version_of
from execution.secrets.crypto import decrypt, encrypt
from execution.services.submit import SubmitDenied, SubmitOutcome

WINDOW_SECONDS = 300
MAX_BODY = 1024 * 1024


class HookRefused(DomainError):
    """The delivery is not taken (401 signature/timestamp, 409 replay, 429 rate, 400 body)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def pointer_get(document: Any, pointer: str) -> Any:
    """RFC 6901: ``/labels/instance``; KeyError when the document has nothing there."""
    if pointer == "":
        return document
    if not pointer.startswith("/"):
        raise KeyError(pointer)
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(document, list):
            if not token.isdigit() or int(token) >= len(document):
                raise KeyError(pointer)
            document = document[int(token)]
        elif isinstance(document, dict) and token in document:
            document = document[token]
        else:
            raise KeyError(pointer)
    return document


def mapping_problems(runbook: Runbook, mapping: Any, fmt: Any) -> list[Problem]:
    problems = []
    if fmt not in TriggerFormat.values:
        problems.append(Problem("format", f"one of {TriggerFormat.values}"))
    if not isinstance(mapping, dict):
        return [*problems, Problem("mapping", "an object of parameter name -> JSON pointer")]
    names = set(properties_of(version_of(runbook).parameters))
    for name, pointer in mapping.items():
        if name not in names:
            problems.append(Problem(f"mapping.{name}", "no such parameter"))
        elif not isinstance(pointer, str) or (pointer and not pointer.startswith("/")):
            problems.append(Problem(f"mapping.{name}", 'a JSON pointer such as "/labels/instance"'))
    return problems


@dataclass
class Created:
    trigger: RunbookTrigger
    secret: str  # shown once


def trigger_create(
    *, runbook: Runbook, actor: Any, mapping: Any, fmt: Any = "json", door: str = ""
) -> Created:
    """A hook of ``runbook`` launched as ``actor`` (a tenant admin makes it)."""
    policy.require(
        actor, policy.Right.CONFIGURE, tenant=runbook.tenant, door=door, details={"runbook": runbook.slug}
    )
    problems = mapping_problems(runbook, mapping, fmt)
    if problems:
        raise PlanInvalid(problems)
    secret = secrets.token_hex(32)
    trigger = RunbookTrigger.objects.create(
        tenant=runbook.tenant,
        runbook=runbook,
        format=fmt,
        mapping=mapping,
        secret_ciphertext=encrypt(secret),
        owner=actor,
    )
    return Created(trigger=trigger, secret=secret)


def signature_of(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def _verify(
    trigger: RunbookTrigger, *, timestamp: str | None, signature: str | None, body: bytes
) -> tuple[datetime, str]:
    if not timestamp or not timestamp.isdigit():
        raise HookRefused(401, "X-OpsConductor-Timestamp: unix seconds are required")
    sent = int(timestamp)
    if abs(time.time() - sent) > WINDOW_SECONDS:
        raise HookRefused(401, "X-OpsConductor-Timestamp: outside the 5-minute window")
    given = (signature or "").removeprefix("sha256=")
    expected = signature_of(decrypt(trigger.secret_ciphertext), timestamp, body)
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HookRefused(401, "X-OpsConductor-Signature: does not match")
    return datetime.fromtimestamp(sent, tz=UTC), expected


def _accept(trigger: RunbookTrigger, *, signature: str, sent: datetime) -> TriggerDelivery:
    """The delivery's row, or refused: a replay, or over the hook's rate."""
    with transaction.atomic():
        # One hook's deliveries one at a time: the count below is then exact.
        RunbookTrigger.objects.select_for_update().filter(pk=trigger.pk).first()
        if TriggerDelivery.objects.filter(trigger=trigger, signature=signature).exists():
            raise HookRefused(409, "replay: this delivery was already received")
        recent = TriggerDelivery.objects.filter(
            trigger=trigger, received_at__gt=timezone.now() - timedelta(minutes=1)
        ).count()
        if recent >= settings.TRIGGER_RATE_PER_MINUTE:
            raise HookRefused(429, f"rate limit: {settings.TRIGGER_RATE_PER_MINUTE} deliveries a minute")
        try:
            with transaction.atomic():
                return TriggerDelivery.objects.create(trigger=trigger, signature=signature, sent_at=sent)
        except IntegrityError:
            raise HookRefused(409, "replay: this delivery was already received") from None


@dataclass
class Launch:
    key: str
    params: dict[str, Any]
    outcome: SubmitOutcome | None = None
    problems: list[Problem] = field(default_factory=list)
    refused: str = ""


def _values(mapping: dict[str, str], document: Any, path: str) -> tuple[dict[str, Any], list[Problem]]:
    values, problems = {}, []
    for name, pointer in mapping.items():
        try:
            values[name] = pointer_get(document, pointer)
        except KeyError:
            problems.append(Problem(f"{path}{pointer}", f"nothing there for parameter {name!r}"))
    return values, problems


def _launches(trigger: RunbookTrigger, payload: Any, delivery: TriggerDelivery) -> tuple[list[Launch], int]:
    """What the payload asks to launch, and how many alerts it ignores."""
    if trigger.format == TriggerFormat.JSON:
        values, problems = _values(trigger.mapping, payload, "body")
        return [
            Launch(key=f"hook:{trigger.trigger_id}:{delivery.signature}", params=values, problems=problems)
        ], 0
    alerts = payload.get("alerts") if isinstance(payload, dict) else None
    if not isinstance(alerts, list):
        raise HookRefused(400, "body.alerts: an Alertmanager payload has a list of alerts")
    # A resolved alert is launched only when the mapping reads its status (docs/runbooks.md).
    wants_resolved = "/status" in trigger.mapping.values()
    launches, ignored = [], 0
    for index, alert in enumerate(alerts):
        if not isinstance(alert, dict):
            raise HookRefused(400, f"body.alerts[{index}]: an object is required")
        status = alert.get("status", "firing")
        if status != "firing" and not wants_resolved:
            ignored += 1
            continue
        fingerprint = str(
            alert.get("fingerprint")
            or hashlib.sha256(json.dumps(alert.get("labels", {}), sort_keys=True).encode()).hexdigest()[:16]
        )
        key = f"alertmanager:{trigger.trigger_id}:{fingerprint}:{alert.get('startsAt', '')}:{status}"
        values, problems = _values(trigger.mapping, alert, f"body.alerts[{index}]")
        launches.append(Launch(key=key, params=values, problems=problems))
    return launches, ignored


@dataclass
class Received:
    trigger: RunbookTrigger
    launches: list[Launch]
    ignored: int


def trigger_receive(
    *, trigger_id: Any, timestamp: str | None, signature: str | None, body: bytes
) -> Received:
    """Verify, record and launch a delivery. Raises HookRefused (nothing launched) or returns
    each launch's outcome (an execution, or the reason it was not made)."""
    trigger = (
        RunbookTrigger.objects.select_related("runbook__tenant", "owner", "tenant")
        .filter(trigger_id=trigger_id, active=True)
        .first()
    )
    if trigger is None:
        raise HookRefused(404, "no such hook")
    if len(body) > MAX_BODY:
        raise HookRefused(413, f"body: at most {MAX_BODY} bytes")
    sent, verified = _verify(trigger, timestamp=timestamp, signature=signature, body=body)
    try:
        payload = json.loads(body)
    except ValueError:
        raise HookRefused(400, "body: not JSON") from None
    delivery = _accept(trigger, signature=verified, sent=sent)
    launches, ignored = _launches(trigger, payload, delivery)
    for launch in launches:
        if launch.problems:
            continue
        try:
            launch.outcome = runbook_launch(
                runbook=trigger.runbook,
                actor=trigger.owner,
                params=launch.params,
                idempotency_header=launch.key,
                wait=False,
            )
        except PlanInvalid as invalid:
            launch.problems = invalid.problems
        except SubmitDenied as denied:
            launch.refused = denied.reason
        except (DomainError, ServiceError) as error:
            launch.refused = str(error)
    delivery.executions = [str(one.outcome.execution.execution_id) for one in launches if one.outcome]
    delivery.save(update_fields=["executions"])
    return Received(trigger=trigger, launches=launches, ignored=ignored)
