"""``manage.py audit seal|export|verify|ship``: the hash-chained audit trail (docs/audit.md).

- ``export --tenant T [--since DATE] [--format jsonl]``: seals what is committed, then writes
  the tenant's chain as JSON lines to standard output;
- ``verify [--tenant T]``: seals, then checks every chain; exits 1 naming the first altered
  or missing row (its table and id) of each broken chain;
- ``seal`` and ``ship``: what the minute schedule runs, by hand.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_date, parse_datetime

from execution.models import Tenant
from execution.services.audit_chain import audit_seal
from execution.services.audit_export import audit_export, audit_verify
from execution.services.audit_sink import audit_ship


def _since(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        value = parse_datetime(raw)
        if value is None:
            day = parse_date(raw)
            value = datetime(day.year, day.month, day.day) if day else None
    except ValueError:
        value = None
    if value is None:
        raise CommandError(f"--since: {raw!r} is not a date (2026-01-31) or an ISO 8601 date-time")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _tenant(slug: str | None) -> Tenant | None:
    if slug is None:
        return None
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        raise CommandError(f"--tenant: no tenant {slug!r}")
    return tenant


class Command(BaseCommand):
    help = "Seal, export, verify or ship the hash-chained audit trail (docs/audit.md)."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="seal|export|verify|ship")
        actions.add_parser("seal", help="chain the committed rows not sealed yet")
        export = actions.add_parser("export", help="a tenant's chain as JSON lines on stdout")
        export.add_argument("--tenant", required=True)
        export.add_argument("--since", help="rows created at or after this date (UTC) or date-time")
        export.add_argument("--format", choices=["jsonl"], default="jsonl")
        verify = actions.add_parser("verify", help="check every link and row; exit 1 at the first problem")
        verify.add_argument("--tenant")
        actions.add_parser("ship", help="deliver to the configured sinks what they have not taken")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "seal":
            summary = audit_seal()
            self.stdout.write(
                f"sealed {summary.sealed}" + (" (another sealer was running)" if summary.busy else "")
            )
        elif action == "export":
            tenant = _tenant(options["tenant"])
            since = _since(options["since"])
            audit_seal()
            for line in audit_export(tenant=tenant, since=since):
                self.stdout.write(json.dumps(line, sort_keys=True, separators=(",", ":")))
        elif action == "verify":
            tenant = _tenant(options.get("tenant"))
            audit_seal()
            results = audit_verify(tenant=tenant)
            broken = [r for r in results if not r.ok]
            for result in results:
                state = f"BROKEN: {result.problem}" if result.problem else "ok"
                self.stdout.write(f"{result.tenant}: {result.checked} entries checked, {state}")
            if broken:
                raise CommandError(f"audit chain broken in {broken[0].tenant}: {broken[0].problem}")
        else:
            audit_seal()
            outcome = audit_ship()
            self.stdout.write(json.dumps(outcome) if outcome else "no sink configured")
            if any(not isinstance(v, int) for v in outcome.values()):
                raise CommandError(f"a sink did not take everything: {outcome}")
