"""``manage.py dlq list|requeue|archive``: the dead-letter queue from a shell
(docs/contract.md#queue-and-workers, docs/contract.md#monitoring)."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from execution import policy
from execution.errors import Conflict
from execution.management.access import command_not_found, command_require, command_user
from execution.models import DeadLetter
from execution.selectors import dead_letters_visible_to
from execution.services.dlq import dlq_archive, dlq_requeue


class Command(BaseCommand):
    help = "List, requeue or archive dead-lettered executions."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["list", "requeue", "archive"])
        parser.add_argument("ids", nargs="*", help="execution ids or dlq ids (requeue/archive)")
        parser.add_argument(
            "--user", help="the operator (required for requeue/archive; list: what they may see)"
        )
        parser.add_argument("--all", action="store_true", help="list requeued/archived entries too")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "list":
            # With --user, what that user may see (the same selector as REST and the pages);
            # without, the shell's whole view.
            entries = (
                dead_letters_visible_to(command_user(options["user"]))
                if options["user"]
                else DeadLetter.objects.select_related("execution__tenant").order_by("-failed_at")
            )
            if not options["all"]:
                entries = entries.filter(requeued=False, archived=False)
            for e in entries:
                self.stdout.write(
                    f"{e.dlq_id}  execution={e.execution_id}  tenant={e.execution.tenant.slug}  "
                    f"reason={e.failure_reason}  attempts={e.attempt_count}  "
                    f"failed_at={e.failed_at:%Y-%m-%d %H:%M:%S}"
                    f"{'  requeued' if e.requeued else ''}{'  archived' if e.archived else ''}"
                )
            return
        if not options["ids"] or not options["user"]:
            raise CommandError(f"dlq {options['action']} needs at least one id and --user")
        operator = command_user(options["user"])
        right = policy.Right.REQUEUE if options["action"] == "requeue" else policy.Right.ARCHIVE
        for raw in options["ids"]:
            try:
                key = uuid.UUID(raw)
            except ValueError:
                raise CommandError(f"not an id: {raw}") from None
            entry = (
                DeadLetter.objects.filter(dlq_id=key).first()
                or DeadLetter.objects.filter(execution__execution_id=key).first()
            )
            if entry is None:
                raise command_not_found("dead letter", raw)
            command_require(operator, right, what="dead letter", raw=raw, execution=entry.execution)
            try:
                if options["action"] == "requeue":
                    execution = dlq_requeue(entry=entry, operator=operator)
                    self.stdout.write(f"requeued {execution.execution_id}")
                else:
                    dlq_archive(entry=entry, operator=operator)
                    self.stdout.write(f"archived {entry.execution_id}")
            except Conflict as exc:
                raise CommandError(str(exc)) from None
