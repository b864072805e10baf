"""Shared body of ``manage.py approve`` and ``manage.py reject``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from approvals.errors import VoteConflict, VoteForbidden, VoteInvalid
from approvals.selectors import open_approval
from approvals.services import approval_vote
from execution import policy
from execution.management.access import command_execution, command_user


class VoteCommand(BaseCommand):
    decision = ""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("execution_id", help="the execution's uuid")
        parser.add_argument("--user", required=True, help="username of the voter")
        parser.add_argument("--comment", default="", help="why (required to reject)")
        parser.add_argument(
            "--window-start", default="", help="approve for a run window: its start (ISO 8601)"
        )
        parser.add_argument("--window-end", default="", help="approve for a run window: its end (ISO 8601)")

    def handle(self, *args: Any, **options: Any) -> None:
        voter = command_user(options["user"])
        # As REST: first whether the voter may see the execution at all (else not found).
        execution = command_execution(options["execution_id"], user=voter, right=policy.Right.READ)
        # The execution's open approval: a waiting gate's, else the pre-run one.
        approval = open_approval(execution)
        if approval is None:
            raise CommandError(f"execution {execution.execution_id} needs no approval (level 0)")
        approval.execution = execution
        window = command_window(options["window_start"], options["window_end"])
        try:
            result = approval_vote(
                approval=approval,
                voter=voter,
                decision=self.decision,
                comment=options["comment"],
                window=window,
            )
        except VoteInvalid as invalid:
            raise CommandError(f"vote refused: --{invalid.field}: {invalid.reason}") from None
        except (VoteForbidden, VoteConflict) as refused:
            kind = "forbidden" if isinstance(refused, VoteForbidden) else "conflict"
            raise CommandError(f"vote refused ({kind}, {refused.code}): {refused.reason}") from None
        approvals = result.votes.filter(decision="approve").count()
        self.stdout.write(
            f"{self.decision} recorded: approval {result.state} ({approvals} of {result.approval_level}), "
            f"execution {result.execution.execution_id} {result.execution.status}"
        )


def command_window(start: str, end: str) -> tuple[datetime, datetime] | None:
    """--window-start/--window-end as aware datetimes (UTC when no offset is given)."""
    if not start and not end:
        return None
    bounds = []
    for name, text in (("--window-start", start), ("--window-end", end)):
        if not text:
            raise CommandError(f"vote refused: {name}: a run window needs both its start and its end")
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise CommandError(f"vote refused: {name}: not an ISO 8601 date and time: {text!r}") from None
        bounds.append(value if value.tzinfo else value.replace(tzinfo=UTC))
    return bounds[0], bounds[1]
