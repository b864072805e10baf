"""``manage.py demo [--password P | --reset-passwords] [--json]``: seed the demo tenant
(docs/contract.md#monitoring).

Idempotent; a plain re-run keeps every demo user's password (the one ``serve`` printed).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from execution.services.demo import demo_example_plans, demo_seed


class Command(BaseCommand):
    help = "Create or refresh the demo tenants, users (one per role), API tokens and local assets."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--password", help="set this password for every demo user (and remember it)")
        parser.add_argument(
            "--reset-passwords",
            action="store_true",
            help="set a new generated password for every demo user (default: keep existing ones)",
        )
        parser.add_argument("--json", action="store_true", help="print the seed as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        seed = demo_seed(password=options["password"], reset_passwords=options["reset_passwords"])
        if options["json"]:
            self.stdout.write(json.dumps(seed.as_json(), indent=2))
            return
        self.stdout.write(f"tenants: {', '.join(seed.tenants)}")
        for name, info in seed.users.items():
            self.stdout.write(
                f"  {name:<10} tenant={info['tenant']:<6} role={info['role']:<9} "
                f"password={info['password']}  token={info['token']}"
            )
        self.stdout.write("assets: " + ", ".join(f"{a['hostname']} (id {a['id']})" for a in seed.assets))
        plans = demo_example_plans()
        if plans:
            self.stdout.write(
                "example plans (POST them to /api/v1/executions/ with the operator's token above;"
                " a prod or deploy plan with the deployer's):"
            )
            for plan in plans:
                self.stdout.write(f"  {plan}")
