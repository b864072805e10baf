"""``manage.py submit plan.json --tenant T --user U``: submit a plan like the pipeline does.

The file is either a docs/contract.md#submission request body (``{"tenant": ..., "plan": {...}, ...}``) or a
bare
plan (``{"name": ..., "environment": ..., "steps": [...]}``); ``--tenant`` overrides.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from execution.api.payloads import execution_payload
from execution.clients.base import ServiceError
from execution.errors import KeyReused
from execution.management.access import command_user
from execution.masking import mask_text
from execution.plans import PlanInvalid
from execution.services.submit import SubmitDenied, execution_submit_body


class Command(BaseCommand):
    help = "Submit a plan (JSON file, or - for standard input) as a user of a tenant."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("plan_file")
        parser.add_argument("--tenant", help="tenant slug (default: the file's 'tenant')")
        parser.add_argument("--user", required=True, help="username of the submitter")
        parser.add_argument("--idempotency-key", help="like the Idempotency-Key header")
        parser.add_argument("--json", action="store_true", help="print the execution as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            raw = sys.stdin.read() if options["plan_file"] == "-" else open(options["plan_file"]).read()  # noqa: SIM115
            body = json.loads(raw)
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read the plan: {exc}") from exc
        if isinstance(body, dict) and "plan" not in body and "steps" in body:
            body = {"plan": body}
        if not isinstance(body, dict):
            raise CommandError("the file must hold a JSON object")
        if options["tenant"]:
            body["tenant"] = options["tenant"]
        user = command_user(options["user"])
        try:
            outcome = execution_submit_body(
                submitter=user, body=body, idempotency_header=options["idempotency_key"]
            )
        except PlanInvalid as exc:
            raise CommandError(
                "invalid plan:\n" + "\n".join(f"  {p.path}: {p.message}" for p in exc.problems)
            ) from exc
        except SubmitDenied as exc:
            raise CommandError(f"permission denied: {exc.reason}") from exc
        except KeyReused as exc:
            raise CommandError(f"refused: {exc}") from exc
        except ServiceError as exc:
            raise CommandError(f"cannot resolve the targets now: {mask_text(str(exc))}") from exc
        execution = outcome.execution
        if options["json"]:
            self.stdout.write(json.dumps(execution_payload(execution), indent=2))
            return
        verb = "replayed" if outcome.replayed else "submitted"
        self.stdout.write(
            f"{verb} {execution.execution_id} status={execution.status} mode={execution.execution_mode} "
            f"sla={execution.sla_class} action={execution.action_class} level={execution.approval_level}"
        )
