"""Acknowledging SLA alerts (docs/contract.md#monitoring, docs/contract.md#operator-console): who, when, why;
the alert leaves the active list."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from execution.errors import DomainError
from execution.masking import mask_text
from execution.models import AuditLog
from monitoring.models import SlaAlert

COMMENT_LIMIT = 2000


class AlertAlreadyAcknowledged(DomainError):
    """Somebody acknowledged the alert first; nothing changed."""


def sla_alert_acknowledge(*, alert: SlaAlert, actor: Any, comment: str) -> SlaAlert:
    """Mark ``alert`` acknowledged by ``actor`` (once: compare-and-swap on acknowledged_at)."""
    now = timezone.now()
    text = mask_text(comment.strip()[:COMMENT_LIMIT])
    with transaction.atomic():
        # Two operators acknowledging at once: the first wins, the second is told so.
        updated = SlaAlert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(
            acknowledged_at=now, acknowledged_by=actor, acknowledge_comment=text
        )
        if updated != 1:
            raise AlertAlreadyAcknowledged("the alert was already acknowledged")
        AuditLog.objects.create(
            tenant_id=alert.tenant_id,
            actor=actor,
            event_type="sla_alert_acknowledged",
            reason=text,
            details={"alert_id": alert.pk, "kind": alert.kind, "execution_id": str(alert.execution_id)},
        )
    alert.refresh_from_db()
    return alert
