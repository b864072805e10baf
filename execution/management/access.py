"""The ``manage.py --user`` door to the policy: the named user, and ``require`` per object.

A refusal is recorded like at every other door and ends the command with one line (non-zero
exit). Like REST's 404, an object of a tenant the user is no member of is ``not found: no
such <what> <id>`` — the same words as for an id that does not exist, so a command reveals
neither that the object exists nor its tenant; a member without the right gets
``permission denied: <reason>`` (REST's 403).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from execution import policy
from execution.models import Execution


def command_user(username: str) -> Any:
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"no user {username!r}")
    return user


def command_not_found(what: str, raw: str) -> CommandError:
    return CommandError(f"not found: no such {what} {raw}")


def command_require(user: Any, right: policy.Right, *, what: str, raw: str, **context: Any) -> None:
    """``require``; ``what``/``raw`` name the object as the command line did (for not found)."""
    try:
        policy.require(user, right, door="command", **context)
    except policy.RightDenied as denied:
        if denied.hidden:
            raise command_not_found(what, raw) from None
        raise CommandError(f"permission denied: {denied.reason}") from None


def command_execution(raw: str, *, user: Any | None, right: policy.Right) -> Execution:
    """The execution ``raw`` names, if ``user`` holds ``right`` on it (without a user: the shell)."""
    try:
        key = uuid.UUID(raw)
    except ValueError:
        raise CommandError(f"not an execution id: {raw!r}") from None
    execution = Execution.objects.select_related("tenant", "actor").filter(execution_id=key).first()
    if execution is None:
        raise command_not_found("execution", raw)
    if user is not None:
        command_require(user, right, what="execution", raw=raw, execution=execution)
    return execution
