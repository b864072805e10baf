"""``command`` steps on an ``automation`` asset: delegated to the Automation Service (docs/contract.md#steps).

The job is started with the key ``<execution_id>:<step_index>:<attempt>`` and followed until it
ends; on a cancel or a step timeout the step's cleanup cancels it on the service
(execution/runners/automation_jobs.py).
Resolved ``env`` values travel to the service in the request body (it is the executor); they
are not logged or stored here.
"""

from __future__ import annotations

from typing import Any

from execution.clients.automation import AutomationServiceClient
from execution.runners.automation_jobs import job_key, job_run, job_target, job_timeout
from execution.runners.base import StepContext, StepResult


def run_command(ctx: StepContext) -> StepResult:
    def start(client: AutomationServiceClient) -> dict[str, Any]:
        return client.job_start(
            tenant=ctx.tenant_slug,
            target=job_target(ctx),
            command=str(ctx.params.get("command", "")),
            env={str(k): str(v) for k, v in (ctx.params.get("env") or {}).items()},
            timeout_seconds=job_timeout(ctx),
            idempotency_key=job_key(ctx),
        )

    return job_run(ctx, what="command", start=start)


def describe(ctx: StepContext) -> dict[str, Any]:
    return {
        "connection": "automation",
        "target": job_target(ctx),
        "command": ctx.params.get("command"),
        "env": sorted((ctx.params.get("env") or {}).keys()),
    }
