"""``manage.py expire_approvals``: the expiry job by hand (it also runs as a schedule)."""

from typing import Any

from django.core.management.base import BaseCommand

from approvals.services import approvals_expire


class Command(BaseCommand):
    help = "Mark pending approvals past their expiry as expired and reject their executions."

    def handle(self, *args: Any, **options: Any) -> None:
        count = approvals_expire()
        self.stdout.write(f"{count} approval(s) expired")
