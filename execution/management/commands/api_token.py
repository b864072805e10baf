"""``manage.py api_token <username>``: issue a new API token and print its key once.

Tokens are stored hashed (docs/api.md), so an existing key cannot be shown again: every run
issues a new key and the user's older ones stop working."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from execution.services.tokens import api_token_issue


class Command(BaseCommand):
    help = "Issue a new API token for a user and print its key (shown once; older keys stop working)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--rotate", action="store_true", help="accepted for compatibility: every run issues a new key"
        )

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"no user {options['username']!r}")
        self.stdout.write(api_token_issue(user=user, rotate=True))
