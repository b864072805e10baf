"""``manage.py runbook list|launch``: runbooks from the shell (docs/runbooks.md#doors).

``launch SLUG --tenant T --user U -p name=value ...`` renders the runbook and submits the
plan as the user, like the REST launch; a refusal or a bad parameter is one line and a
non-zero exit.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from execution.api.payloads import execution_payload
from execution.clients.base import ServiceError
from execution.errors import KeyReused, NotFound
from execution.management.access import command_user
from execution.masking import mask_text
from execution.plans import PlanInvalid
from execution.runbooks.params import params_from_text
from execution.runbooks.selectors import runbook_find, runbooks_visible_to
from execution.runbooks.services import runbook_launch, version_of
from execution.services.submit import SubmitDenied


def _pairs(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CommandError(f"-p takes name=value, not {item!r}")
        out[name] = value
    return out


class Command(BaseCommand):
    help = "List or launch runbooks as a user."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="the runbooks the user reads")
        listing.add_argument("--user", required=True)
        listing.add_argument("--tenant")
        launch = sub.add_parser("launch", help="render and submit a runbook")
        launch.add_argument("slug")
        launch.add_argument("--user", required=True, help="username of the launcher")
        launch.add_argument("--tenant", help="needed when several of the user's tenants have the slug")
        launch.add_argument("-p", "--param", action="append", default=[], help="name=value (repeatable)")
        launch.add_argument("--version", type=int, help="default: the latest")
        launch.add_argument("--dry-run", action="store_true")
        launch.add_argument("--idempotency-key", help="like the Idempotency-Key header")
        launch.add_argument("--json", action="store_true", help="print the execution as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        user = command_user(options["user"])
        if options["action"] == "list":
            runbooks = runbooks_visible_to(user, door="command")
            if options["tenant"]:
                runbooks = runbooks.filter(tenant__slug=options["tenant"])
            for runbook in runbooks:
                self.stdout.write(f"{runbook.tenant.slug}/{runbook.slug}\t{runbook.name}")
            return
        try:
            runbook = runbook_find(user, slug=options["slug"], tenant=options["tenant"], door="command")
            version = version_of(runbook, options["version"])
        except NotFound as exc:
            raise CommandError(f"not found: {exc}") from None
        params = params_from_text(version.parameters, _pairs(options["param"]))
        try:
            outcome = runbook_launch(
                runbook=runbook,
                actor=user,
                params=params,
                version=version.number,
                dry_run=options["dry_run"],
                idempotency_header=options["idempotency_key"],
            )
        except PlanInvalid as exc:
            raise CommandError(
                "invalid: " + "; ".join(f"{p.path}: {p.message}" for p in exc.problems)
            ) from None
        except SubmitDenied as exc:
            raise CommandError(f"permission denied: {exc.reason}") from None
        except KeyReused as exc:
            raise CommandError(f"refused: {exc}") from None
        except ServiceError as exc:
            raise CommandError(f"cannot resolve the targets now: {mask_text(str(exc))}") from None
        execution = outcome.execution
        if options["json"]:
            self.stdout.write(json.dumps(execution_payload(execution), indent=2))
            return
        verb = "replayed" if outcome.replayed else "launched"
        self.stdout.write(
            f"{verb} {execution.execution_id} runbook={runbook.slug} v{version.number} "
            f"status={execution.status} level={execution.approval_level} plan_hash={execution.plan_hash}"
        )
