"""Template context shared by every page."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def single_sign_on(request: HttpRequest) -> dict[str, Any]:
    """Whether the login page offers single sign-on (docs/oidc.md)."""
    return {"oidc_enabled": bool(settings.OIDC_ISSUER)}


def navigation(request: HttpRequest) -> dict[str, Any]:
    """What the header links to: Notifications only for those who manage them (a tenant
    admin). A callable, so the query runs only when a page renders the header."""
    from monitoring.notifications.subscriptions import tenant_ids_managing_notifications

    def manages_notifications() -> bool:
        user = getattr(request, "user", None)
        return bool(user is not None and user.is_authenticated and tenant_ids_managing_notifications(user))

    return {"manages_notifications": manages_notifications}
