"""Template context shared by every page."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def single_sign_on(request: HttpRequest) -> dict[str, Any]:
    """Whether the login page offers single sign-on (docs/oidc.md)."""
    return {"oidc_enabled": bool(settings.OIDC_ISSUER)}
