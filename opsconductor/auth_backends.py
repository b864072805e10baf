"""The login throttle's authentication backend (docs/api.md#login-throttling-and-production-settings)."""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend


class LoginThrottleBackend(AxesStandaloneBackend):
    """django-axes' lockout check for every login that comes with a request (the login forms,
    the admin's). ``authenticate()`` called without one (a script, a management command, the
    test client's ``login()``) is no form an attacker can reach, so it is not throttled
    instead of failing with axes' "request required" error."""

    def authenticate(
        self, request: Any, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Any:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)
