"""``manage.py go_no_go``: the release checklist, executed; prints GO or NO-GO with reasons."""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from monitoring.services.release import release_checklist_run


class Command(BaseCommand):
    help = (
        "Release checklist: schema, enums, migrations, policies, workers, secret backends, "
        "channel layer, masking self-test. Exit 0 on GO, 1 on NO-GO."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print the checklist as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        results = release_checklist_run()
        go = all(r.ok for r in results)
        if options["json"]:
            payload = {"decision": "GO" if go else "NO-GO", "checks": [r.as_json() for r in results]}
            self.stdout.write(json.dumps(payload, indent=2))
        else:
            for r in results:
                mark = self.style.SUCCESS("ok  ") if r.ok else self.style.ERROR("FAIL")
                self.stdout.write(f"{mark} {r.name:<16} {r.detail}")
            if go:
                self.stdout.write(self.style.SUCCESS("GO"))
            else:
                self.stdout.write(self.style.ERROR("NO-GO"))
                for r in results:
                    if not r.ok:
                        self.stdout.write(f"  - {r.name}: {r.detail}")
        if not go:
            sys.exit(1)
