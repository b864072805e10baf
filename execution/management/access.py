"""The ``manage.py --user`` door to the policy: the named user, and ``require`` per object.

A refusal is recorded like at every other door and ends the command with a one-line reason
(non-zero exit).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from execution import policy


def command_user(username: str) -> Any:
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"no user {username!r}")
    return user


def command_require(user: Any, right: policy.Right, **context: Any) -> None:
    try:
        policy.require(user, right, door="command", **context)
    except policy.RightDenied as denied:
        raise CommandError(f"permission denied: {denied.reason}") from None
