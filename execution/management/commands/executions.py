"""``manage.py executions list|show``: executions for on-call engineers."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from execution.api.payloads import execution_payload
from execution.clients.automation import automation_service_client
from execution.enums import ExecutionStatus
from execution.errors import DomainError
from execution.masking import mask_text
from execution.models import Execution


class Command(BaseCommand):
    help = "List executions (filters) or show one with its steps and events."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list")
        listing.add_argument("--tenant")
        listing.add_argument("--status", choices=ExecutionStatus.values)
        listing.add_argument("--environment")
        listing.add_argument("--tag")
        listing.add_argument("--limit", type=int, default=20)
        listing.add_argument("--json", action="store_true")
        show = sub.add_parser("show")
        show.add_argument("execution_id")
        show.add_argument("--json", action="store_true")
        show.add_argument(
            "--remote",
            action="store_true",
            help="also list each Automation Service step's jobs (every attempt) from the service's history",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "show":
            self._show(options)
        else:
            self._list(options)

    def _list(self, options: dict[str, Any]) -> None:
        queryset = Execution.objects.select_related("tenant", "actor").order_by("-created_at", "-id")
        if options["tenant"]:
            queryset = queryset.filter(tenant__slug=options["tenant"])
        if options["status"]:
            queryset = queryset.filter(status=options["status"])
        if options["environment"]:
            queryset = queryset.filter(environment=options["environment"])
        if options["tag"]:
            queryset = queryset.filter(tags__contains=[options["tag"]])
        rows = list(queryset[: max(1, options["limit"])])
        if options["json"]:
            self.stdout.write(json.dumps([execution_payload(e, with_steps=False) for e in rows], indent=2))
            return
        for e in rows:
            name = (e.plan_snapshot or {}).get("name", "")
            self.stdout.write(
                f"{e.execution_id}  {e.created_at:%Y-%m-%d %H:%M:%S}  {e.tenant.slug:<10} {e.status:<16} "
                f"{e.environment:<7} {e.action_class:<6} {e.sla_class:<6} L{e.approval_level} "
                f"{e.actor.get_username():<12} {name}"
            )
        self.stdout.write(f"{len(rows)} execution(s)")

    def _show(self, options: dict[str, Any]) -> None:
        try:
            execution_id = uuid.UUID(options["execution_id"])
        except ValueError:
            raise CommandError("not an execution id") from None
        execution = (
            Execution.objects.select_related("tenant", "actor").filter(execution_id=execution_id).first()
        )
        if execution is None:
            raise CommandError("no such execution")
        payload = execution_payload(execution)
        if options["json"]:
            self.stdout.write(json.dumps(payload, indent=2))
            return
        for key in (
            "execution_id",
            "tenant",
            "actor",
            "plan_name",
            "status",
            "execution_mode",
            "sla_class",
            "action_class",
            "approval_level",
            "priority",
            "environment",
            "created_at",
            "started_at",
            "completed_at",
            "error_message",
        ):
            self.stdout.write(f"{key:>15}: {payload.get(key)}")
        if payload.get("approval"):
            approval = payload["approval"]
            votes = ", ".join(f"{v['voter']}={v['decision']}" for v in approval["votes"]) or "none"
            self.stdout.write(
                f"{'approval':>15}: {approval['state']} (level {approval['approval_level']}, votes: {votes})"
            )
        self.stdout.write("steps:")
        for step in payload["steps"]:
            target = step["target"]["hostname"] or "-"
            self.stdout.write(
                f"  [{step['index']}] {step['name']:<24} {step['type']:<9} {target:<12} {step['status']:<10} "
                f"{step['duration_ms'] if step['duration_ms'] is not None else '':>6} {step['error_message']}"
            )
            output = step["output"] or {}
            if output.get("automation_job_id"):
                workflow = f" (workflow {output['workflow']})" if output.get("workflow") else ""
                self.stdout.write(
                    f"      remote job {output['automation_job_id']}{workflow}  "
                    f"history: {output.get('automation_history_url') or '-'}"
                )
                if options["remote"]:
                    self._remote_jobs(execution, step, output)

    def _remote_jobs(self, execution: Execution, step: dict[str, Any], output: dict[str, Any]) -> None:
        """Every attempt's job of this step, from the service's history (keys say which)."""
        client = automation_service_client()
        if client is None:
            self.stdout.write("      remote history: AUTOMATION_SERVICE_URL is not set")
            return
        prefix = f"{execution.execution_id}:{step['index']}:"
        try:
            history = client.jobs_history(
                tenant=execution.tenant.slug,
                hostname=step["target"]["hostname"] or "",
                workflow=output.get("workflow") or "",
            )
        except DomainError as exc:
            self.stdout.write(f"      remote history unavailable: {mask_text(str(exc))}")
            return
        finally:
            client.close()
        for job in history:
            key = str(job.get("idempotency_key") or "")
            if key.startswith(prefix):
                attempt = key[len(prefix) :]
                self.stdout.write(f"        attempt {attempt}: job {job.get('id')} {job.get('status')}")
