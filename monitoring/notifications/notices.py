"""Notices of membership changes (docs/notifications.md#membership-notices): a member added,
or a member's role changed, is e-mailed to the tenant's other admins through the delivery
machinery (one ``notification_deliveries`` row, sent and retried like every delivery).

No subscription decides it: an admin who grants a role cannot keep the other admins from
hearing of it. The recipients are the tenant's active admins with an e-mail address,
except the one who made the change and the member concerned. Nothing is sent inside the
request: the row is claimable at once, and each cluster's tick queues the sending.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from execution.enums import Role
from execution.masking import mask_text
from execution.models import AuditLog, Tenant
from monitoring.notifications.models import Channel, Kind, NotificationDelivery
from monitoring.notifications.render import SUBJECT_MAX, header_line
from opsconductor.listening import public_url

WHAT = {
    "member_added": "added {user} as {role}",
    "member_role_changed": "changed the role of {user} from {before} to {role}",
}


def admins_to_notify(*, tenant: Tenant, actor: Any, subject: Any) -> list[Any]:
    """The tenant's active admins with an e-mail address, but ``actor`` and ``subject``."""
    others = [u.pk for u in (actor, subject) if getattr(u, "pk", None)]
    return list(
        get_user_model()
        .objects.filter(memberships__tenant=tenant, memberships__role=Role.ADMIN, is_active=True)
        .exclude(email="")
        .exclude(pk__in=others)
        .order_by("username")
    )


def member_change_notify(
    *, audit: AuditLog, tenant: Tenant, actor: Any, subject: Any
) -> NotificationDelivery | None:
    """Record the e-mail telling the tenant's other admins what ``audit`` (a ``member_added``
    or ``member_role_changed`` row) says; None when there is nobody to tell. Call inside the
    transaction that writes ``audit``: the notice exists exactly when the change does."""
    recipients = admins_to_notify(tenant=tenant, actor=actor, subject=subject)
    if not recipients:
        return None
    details = audit.details
    who = actor.get_username() if getattr(actor, "pk", None) else f"the system ({details.get('door', '')})"
    what = WHAT[audit.event_type].format(
        user=details.get("user", ""),
        role=details.get("role") or details.get("to", ""),
        before=details.get("from", ""),
    )
    base = public_url()
    url = base + reverse("members_page", args=[tenant.slug])
    subject_line = header_line(f"[OpsConductor] {tenant.slug}: {who} {what}", SUBJECT_MAX)
    body = (
        f"In tenant {tenant.slug}, {who} {what} (through {details.get('door', '')}, "
        f"{audit.created_at.isoformat()}).\n\n"
        f"Members and roles: {url}\n"
        f"Audit trail: {base}{reverse('audit_page')}\n\n"
        "--\nOpsConductor Stage E. You receive this as an admin of the tenant: every grant or change "
        "of a role is told to the tenant's other admins.\n"
    )
    return NotificationDelivery.objects.create(
        tenant=tenant,
        audit_id=audit.pk,
        kind=Kind.ROLE_GRANTED,
        channel=Channel.EMAIL,
        destination=",".join(user.email for user in recipients),
        subject=mask_text(subject_line),
        body=mask_text(body),
        max_attempts=settings.NOTIFY_MAX_ATTEMPTS,
        next_attempt_at=timezone.now(),
    )
