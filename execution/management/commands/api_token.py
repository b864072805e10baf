"""``manage.py api_token <username> --tenant T --name N [--expires 90d|2027-01-31|never]
[--rotate]``: issue an API token bound to tenant T and print its key once (docs/api.md#tokens).

The shell acts as the installation (no policy asked; audited with actor "system"). The user
must be a member of T. ``--rotate`` replaces the user's token of the same name in T (its old
key stops working); without it an existing name is refused.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from execution.models import Tenant
from execution.services.tokens import TokenRefused, api_token_audit, api_token_issue

_DURATION = re.compile(r"^(\d{1,5})([hd])$")


def expiry_parse(raw: str) -> datetime | None:
    """``never``, a duration (``12h``, ``90d``) or an ISO 8601 date/time (a date: midnight UTC)."""
    raw = raw.strip()
    if raw in ("", "never"):
        return None
    match = _DURATION.match(raw)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return timezone.now() + (timedelta(hours=amount) if unit == "h" else timedelta(days=amount))
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise CommandError(
            f"--expires: {raw!r} is not 'never', a duration like 12h or 90d, or an ISO 8601 date"
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = "Issue an API token bound to one tenant and print its key (shown once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--tenant", required=True, help="the tenant the token reads and acts in")
        parser.add_argument("--name", required=True, help="what the token is for, e.g. ci-pipeline")
        parser.add_argument(
            "--expires", default="never", help="never (default), a duration (12h, 90d) or an ISO 8601 date"
        )
        parser.add_argument(
            "--rotate", action="store_true", help="replace the user's token of this name in the tenant"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"no user {options['username']!r}")
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"no tenant {options['tenant']!r}")
        expires_at = expiry_parse(options["expires"])
        try:
            with transaction.atomic():
                issued = api_token_issue(
                    user=user,
                    tenant=tenant,
                    name=options["name"],
                    expires_at=expires_at,
                    replace=options["rotate"],
                )
                api_token_audit(token=issued.token, actor=None, event_type="token_issued", door="command")
        except TokenRefused as refused:
            hint = (
                " (--rotate replaces it)" if refused.field == "name" and "already" in refused.message else ""
            )
            option = {"expires_at": "--expires"}.get(refused.field, f"--{refused.field}")
            raise CommandError(f"{option}: {refused.message}{hint}") from None
        self.stdout.write(issued.key)
