"""Subscriptions, personas and a signed-webhook receiver for the notification tests."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from typing import Any

from execution.enums import Role
from execution.models import OutboundAllowRule
from monitoring.notifications.models import Channel, NotificationSubscription
from monitoring.notifications.subscriptions import subscription_save
from tests.factories import MembershipFactory, UserFactory
from tests.support.httpserver import LoopbackHttpServer

WEBHOOK_SECRET = "whsec-0123456789abcdef-test"


def person(tenant: Any, username: str, role: str) -> Any:
    user = UserFactory(username=username, email=f"{username}@example.test")
    MembershipFactory(tenant=tenant, user=user, role=role)
    return user


def personas(tenant: Any) -> dict[str, Any]:
    return {
        "requester": person(tenant, "rita-requester", Role.DEPLOYER),
        "approver1": person(tenant, "ada-approver", Role.APPROVER),
        "approver2": person(tenant, "bob-approver", Role.APPROVER),
        "viewer": person(tenant, "vic-viewer", Role.VIEWER),
    }


def subscribe(
    *, tenant: Any, kinds: list[str], channel: str, destination: str, environment: str = "", name: str = ""
) -> NotificationSubscription:
    subscription = NotificationSubscription(
        tenant=tenant,
        # Unique in the tenant (notif_sub_tenant_name_unique) unless the test names it.
        name=name or f"{channel} {'+'.join(kinds)} {environment or 'any'} {destination}"[:100],
        kinds=kinds,
        channel=channel,
        destination=destination,
        environment=environment,
    )
    secret = WEBHOOK_SECRET if channel == Channel.WEBHOOK else ""
    subscription, _ = subscription_save(subscription=subscription, actor=None, secret=secret)
    if channel == Channel.WEBHOOK:
        # The receivers listen on loopback: a superuser's rule lists and opens 127.0.0.1 for
        # the tenant (a tenant admin's rule would list it, not open it).
        OutboundAllowRule.objects.get_or_create(
            tenant=tenant, host_pattern="127.0.0.1", environment="", defaults={"opens_special": True}
        )
    return subscription


def verifies(body: bytes, header: str, secret: str = WEBHOOK_SECRET) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


class TimedReceiver(LoopbackHttpServer):
    """A loopback webhook receiver answering ``status`` and stamping each request's arrival."""

    def __init__(self, status: int = 200) -> None:
        self.arrivals: list[float] = []
        self._lock = threading.Lock()

        def responder(m: str, p: str, h: dict[str, str], b: bytes) -> tuple[int, dict[str, str], bytes]:
            with self._lock:
                self.arrivals.append(time.monotonic())
            return status, {"Content-Type": "application/json"}, b'{"ok": true}'

        super().__init__(responder)
