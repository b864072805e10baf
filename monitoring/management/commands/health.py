"""``manage.py health``: the readiness checks of /readyz, one line each; exit 1 when not ready."""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from monitoring.services.readiness import readiness_run


class Command(BaseCommand):
    help = "Run the readiness checks (database, migrations, policies, workers, channel layer)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print the checks as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        results = readiness_run()
        ready = all(r.ok for r in results)
        if options["json"]:
            self.stdout.write(
                json.dumps({"ready": ready, "checks": [r.as_json() for r in results]}, indent=2)
            )
        else:
            for r in results:
                mark = self.style.SUCCESS("ok  ") if r.ok else self.style.ERROR("FAIL")
                self.stdout.write(f"{mark} {r.name:<14} {r.detail}")
            failing = ", ".join(r.name for r in results if not r.ok)
            self.stdout.write("READY" if ready else f"NOT READY ({failing})")
        if not ready:
            sys.exit(1)
