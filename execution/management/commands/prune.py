"""``manage.py prune --older-than DAYS [--dry-run] [--batch N]``: retention (docs/operations.md)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from execution.services.retention import PruneSummary, retention_prune


class Command(BaseCommand):
    help = (
        "Delete finished executions (with steps, events, queue items, approvals, votes, locks; "
        "dead letters archived) whose end is older than --older-than days, in short batches."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", type=int, required=True, metavar="DAYS")
        parser.add_argument(
            "--dry-run", action="store_true", help="count what would be deleted; change nothing"
        )
        parser.add_argument(
            "--batch",
            type=int,
            default=settings.RETENTION_BATCH_SIZE,
            metavar="N",
            help="executions per transaction (default RETENTION_BATCH_SIZE)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        verbosity = int(options["verbosity"])
        if options["older_than"] < 1:
            raise CommandError(f"--older-than must be at least 1 day, got {options['older_than']}")
        if options["batch"] < 1:
            raise CommandError(f"--batch must be at least 1, got {options['batch']}")

        def progress(summary: PruneSummary) -> None:
            if verbosity >= 2:
                self.stdout.write(
                    f"batch {summary.batches}: {summary.counts.get('executions', 0)} executions so far"
                )

        summary = retention_prune(
            older_than_days=options["older_than"],
            batch_size=options["batch"],
            dry_run=options["dry_run"],
            progress=progress,
        )
        self.stdout.write(summary.line())
