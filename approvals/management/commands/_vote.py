"""Shared body of ``manage.py approve`` and ``manage.py reject``."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from approvals.errors import VoteConflict, VoteForbidden
from approvals.models import Approval
from approvals.services import approval_vote
from execution.management.access import command_user


class VoteCommand(BaseCommand):
    decision = ""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("execution_id", help="the execution's uuid")
        parser.add_argument("--user", required=True, help="username of the voter")
        parser.add_argument("--comment", default="", help="why")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            execution_id = uuid.UUID(options["execution_id"])
        except ValueError:
            raise CommandError(f"not an execution id: {options['execution_id']!r}") from None
        voter = command_user(options["user"])
        approval = (
            Approval.objects.select_related("execution").filter(execution__execution_id=execution_id).first()
        )
        if approval is None:
            raise CommandError(f"execution {execution_id} has no approval (unknown or level 0)")
        try:
            result = approval_vote(
                approval=approval, voter=voter, decision=self.decision, comment=options["comment"]
            )
        except (VoteForbidden, VoteConflict) as refused:
            kind = "forbidden" if isinstance(refused, VoteForbidden) else "conflict"
            raise CommandError(f"vote refused ({kind}, {refused.code}): {refused.reason}") from None
        approvals = result.votes.filter(decision="approve").count()
        self.stdout.write(
            f"{self.decision} recorded: approval {result.state} ({approvals} of {result.approval_level}), "
            f"execution {result.execution.execution_id} {result.execution.status}"
        )
