"""``manage.py cancel <execution_id> [--user U] [--reason TEXT]``: cancel an execution
(docs/contract.md#cancellation)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from execution import policy
from execution.errors import AlreadyFinished
from execution.management.access import command_execution, command_user
from execution.services.cancel import CANCEL_REASON_MAX, execution_cancel


class Command(BaseCommand):
    help = "Cancel an execution: at once if it has not started, cooperatively if it runs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("execution_id")
        parser.add_argument(
            "--user", help="who cancels: their right to cancel is checked and recorded (default: the shell)"
        )
        parser.add_argument("--reason", default="", help="why (shown in the events, at most 500 characters)")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = command_user(options["user"]) if options["user"] else None
        execution = command_execution(options["execution_id"], user=actor, right=policy.Right.CANCEL)
        if len(options["reason"]) > CANCEL_REASON_MAX:
            raise CommandError(f"--reason: at most {CANCEL_REASON_MAX} characters")
        try:
            execution = execution_cancel(execution=execution, actor=actor, reason=options["reason"])
        except AlreadyFinished as exc:
            raise CommandError(f"{exc}; nothing to cancel") from None
        state = (
            "cancel requested"
            if execution.cancel_requested_at and execution.status == "running"
            else execution.status
        )
        self.stdout.write(f"{execution.execution_id}: {state}")
