"""``notification_subscriptions`` and ``notification_deliveries``."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from execution.enums import Environment
from execution.models import Tenant


class Kind(models.TextChoices):
    APPROVAL_REQUESTED = "approval_requested", "approval requested"
    APPROVED = "approved", "approved"
    REJECTED = "rejected", "rejected"
    FAILED = "failed", "failed"
    TIMEOUT = "timeout", "timed out"
    DEAD_LETTERED = "dead_lettered", "dead-lettered"
    SLA_VIOLATION = "sla_violation", "SLA violation"
    # Not subscribed to: every membership grant or role change is sent to the tenant's other
    # admins (monitoring/notifications/notices.py), whoever subscribed to what.
    ROLE_GRANTED = "role_granted", "role granted"


# The kinds a subscription chooses from (events of executions).
SUBSCRIBABLE = [choice for choice in Kind.choices if choice[0] != Kind.ROLE_GRANTED]


class Channel(models.TextChoices):
    EMAIL = "email", "e-mail"
    WEBHOOK = "webhook", "webhook"


class NotificationSubscription(models.Model):
    """Who hears about which kinds of event of one tenant, and how."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="notification_subscriptions")
    name = models.CharField(max_length=100)
    kinds = ArrayField(models.CharField(max_length=32, choices=Kind.choices))
    channel = models.CharField(max_length=16, choices=Channel.choices)
    # E-mail: comma-separated addresses (approval_requested always goes to exactly the users
    # who may vote instead). Webhook: the http(s) URL, whose host must be on the allow-list.
    destination = models.CharField(max_length=500, blank=True, default="")
    # Only executions of this environment; blank = every environment.
    environment = models.CharField(max_length=16, choices=Environment.choices, blank=True, default="")
    # Webhook signing secret, Fernet-encrypted (execution/secrets/crypto.py); never shown again.
    secret_ciphertext = models.TextField(blank=True, default="")
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "notification_subscriptions"
        ordering = ["tenant_id", "name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(channel__in=[c.value for c in Channel]), name="notif_sub_channel_valid"
            ),
            # One name, one subscription in a tenant's list (the page, the admin, deliveries).
            models.UniqueConstraint(fields=["tenant", "name"], name="notif_sub_tenant_name_unique"),
        ]
        indexes = [
            # Dispatch: WHERE tenant_id = ? AND is_active AND kinds @> ARRAY[kind].
            models.Index(fields=["tenant", "is_active"], name="notif_sub_tenant_active"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant} / {self.name} ({self.channel})"


class NotificationDelivery(models.Model):
    """One message of one event to one subscription: the unique pair is the exactly-once guard.

    An ``approval_requested`` e-mail is one message per approver instead (each carries a link
    only its recipient opens): ``recipient_id`` names the user, and the unique triple
    (subscription, event, recipient) is the guard of those.

    A notice of a membership change (kind ``role_granted``) has no subscription, event or
    execution: it reports the audit row ``audit_id`` to the tenant's admins."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RETRYING = "retrying"
        DELIVERED = "delivered"
        FAILED = "failed"

    subscription = models.ForeignKey(
        NotificationSubscription, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    # Plain columns, not foreign keys: a delivery outlives nothing it points at (retention
    # prunes old events and executions; their deliveries go with them by execution_id).
    event_id = models.BigIntegerField(null=True, blank=True)
    execution_id = models.UUIDField(null=True, blank=True, db_index=True)
    audit_id = models.BigIntegerField(null=True, blank=True)
    # The one user a message is for (an approval request's e-mail to one approver); null for a
    # message to a subscription's destination. A plain column like the others.
    recipient_id = models.BigIntegerField(null=True, blank=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    destination = models.TextField(blank=True, default="")
    subject = models.CharField(max_length=300, blank=True, default="")
    body = models.TextField(blank=True, default="")  # masked; the exact bytes signed and sent
    html_body = models.TextField(blank=True, default="")  # masked; e-mail only
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=5)
    # Claimable from this instant (back-off); a claim also pushes it forward as a lease.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    response_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    # One entry per attempt: {"at", "response_code", "error", "next_in_seconds"} (masked).
    attempt_log = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "notification_deliveries"
        verbose_name_plural = "notification deliveries"  # not Django's "deliverys"
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "event_id"],
                condition=models.Q(recipient_id__isnull=True),
                name="notif_delivery_once",
            ),
            models.UniqueConstraint(
                fields=["subscription", "event_id", "recipient_id"],
                condition=models.Q(recipient_id__isnull=False),
                name="notif_delivery_once_per_recipient",
            ),
            # An event's delivery to a subscription, or a membership notice of an audit row.
            models.CheckConstraint(
                condition=models.Q(
                    subscription__isnull=False, event_id__isnull=False, execution_id__isnull=False
                )
                | models.Q(audit_id__isnull=False, kind="role_granted"),
                name="notif_delivery_of_event_or_notice",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["pending", "retrying", "delivered", "failed"]),
                name="notif_delivery_status_valid",
            ),
        ]
        indexes = [
            # Claim: WHERE status IN ('pending','retrying') AND next_attempt_at <= now()
            #        ORDER BY next_attempt_at FOR UPDATE SKIP LOCKED.
            models.Index(
                fields=["next_attempt_at"],
                name="notif_delivery_due",
                condition=models.Q(status__in=["pending", "retrying"]),
            ),
            # Admin/page listing: WHERE tenant_id IN (...) ORDER BY id DESC.
            models.Index(fields=["tenant", "-id"], name="notif_delivery_tenant"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} -> {self.subscription_id} ({self.status})"
