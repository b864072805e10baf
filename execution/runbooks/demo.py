"""The demo tenant's runbooks (docs/runbooks.md, README "Runbooks"): a read-only health
check whose host comes from the inventory, a prod restart that needs two approvers, a daily
schedule of the health check and an Alertmanager trigger of the restart. Idempotent: what
exists is kept as it is."""

from __future__ import annotations

import json
from typing import Any

from execution.models import Tenant
from execution.runbooks.models import Runbook, RunbookSchedule, RunbookTrigger
from execution.runbooks.services import runbook_create
from execution.runbooks.triggers import trigger_create

HEALTH = {
    "slug": "health-check",
    "name": "Health check",
    "description": "Load, uptime and disk usage of one host (read-only: no approval in dev).",
    "tags": ["demo", "read-only"],
    "parameters": {
        "type": "object",
        "properties": {
            "host": {"type": "string", "title": "Host", "choices_from": {"tag": "demo"}},
            "mount": {
                "type": "string",
                "title": "Mount point",
                "pattern": "^/[A-Za-z0-9/_.-]*$",
                "default": "/",
            },
        },
        "required": ["host"],
    },
    "plan": {
        "name": "health check of {{ params.host }}",
        "environment": "dev",
        "steps": [
            {
                "name": "uptime",
                "type": "command",
                "target": {"hostname": "{{ params.host }}"},
                "params": {"command": "uptime"},
                "action_class": "read",
            },
            {
                "name": "disk",
                "type": "command",
                "target": {"hostname": "{{ params.host }}"},
                "params": {"command": "df -h {{ params.mount }}"},
                "action_class": "read",
            },
        ],
    },
    "min_approval_level": 0,
}
RESTART = {
    "slug": "restart-prod",
    "name": "Restart a service in prod",
    "description": "Checks the configuration, restarts the service; two approvers must agree.",
    "tags": ["demo", "prod"],
    "parameters": {
        "type": "object",
        "properties": {
            "service": {"type": "string", "title": "Service", "enum": ["nginx", "api"], "default": "nginx"},
            "host": {
                "type": "string",
                "title": "Host",
                "choices_from": {"tag": "demo"},
                "default": "local-1",
            },
        },
        "required": ["service"],
    },
    "plan": {
        "name": "restart {{ params.service }} on {{ params.host }}",
        "environment": "prod",
        "steps": [
            {
                "name": "check config",
                "type": "command",
                "target": {"hostname": "{{ params.host }}"},
                "params": {"command": "echo config ok"},
                "action_class": "read",
            },
            {
                "name": "restart",
                "type": "command",
                "target": {"hostname": "{{ params.host }}"},
                "params": {"command": "echo restarting {{ params.service }}"},
            },
        ],
    },
    "min_approval_level": 2,
}


def _runbook(tenant: Tenant, admin: Any, spec: dict[str, Any]) -> Runbook:
    found = Runbook.objects.filter(tenant=tenant, slug=spec["slug"]).first()
    return found or runbook_create(tenant=tenant, actor=admin, door="command", **spec)


def runbooks_demo_seed(*, tenant: Tenant, admin: Any, trigger_file: Any) -> None:
    """The two runbooks, the schedule and the trigger; the trigger's secret is written to
    ``trigger_file`` (the state directory, closed like the demo tokens) when it is made."""
    health = _runbook(tenant, admin, HEALTH)
    restart = _runbook(tenant, admin, RESTART)
    RunbookSchedule.objects.get_or_create(
        tenant=tenant,
        runbook=health,
        name="daily health of local-1",
        defaults={
            "cron": "0 6 * * *",
            "timezone": "Europe/Berlin",
            "params": {"host": "local-1"},
            "owner": admin,
        },
    )
    if not RunbookTrigger.objects.filter(runbook=restart).exists():
        created = trigger_create(
            runbook=restart,
            actor=admin,
            mapping={"service": "/labels/service", "host": "/labels/instance"},
            fmt="alertmanager",
            door="command",
        )
        trigger_file.write_text(
            json.dumps({"id": str(created.trigger.trigger_id), "secret": created.secret}, sort_keys=True)
        )
        trigger_file.chmod(0o600)
