"""``workflow`` steps (docs/contract.md#steps): run a workflow of the Automation Service on the target.

``params: {"workflow": "<name>", "inputs": {...}}``. Secret references in ``inputs`` are
resolved just in time by the engine like any param and travel to the service in the start
body (it is the executor); everything that comes back is masked by the engine. The run is
started with the job key of execution/runners/automation_jobs.py (a retry starts a new run,
a repeat of the same attempt does not), followed until it ends with its output streamed, and
cancelled on the service on a cancel or the step timeout. The step's output records the
remote job id and the link to its history on the service.
"""

from __future__ import annotations

import re
from typing import Any

from execution.clients.automation import AutomationServiceClient
from execution.runners.automation_jobs import job_key, job_run, job_target, job_timeout
from execution.runners.base import ParamProblem, Runner, StepContext, StepResult
from execution.runners.registry import register

WORKFLOW_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
NAME_RULE = "letters, digits, '.', '_' and '-', at most 128 characters"
PARAM_KEYS = frozenset({"workflow", "inputs"})


@register
class WorkflowRunner(Runner):
    step_type = "workflow"
    aliases = ("automation_workflow",)
    needs_target = True

    def validate_params(self, params: dict[str, Any]) -> list[ParamProblem]:
        unknown = sorted(set(params) - PARAM_KEYS, key=str)
        problems = [ParamProblem(str(key), "unknown parameter") for key in unknown]
        name = params.get("workflow")
        if not isinstance(name, str) or not WORKFLOW_NAME.fullmatch(name):
            problems.append(ParamProblem("workflow", f"a workflow name is required ({NAME_RULE})"))
        inputs = params.get("inputs", {})
        if not isinstance(inputs, dict):
            problems.append(ParamProblem("inputs", "must be an object of name: value"))
        return problems

    def run(self, ctx: StepContext) -> StepResult:
        workflow = str(ctx.params["workflow"])

        def start(client: AutomationServiceClient) -> dict[str, Any]:
            return client.workflow_start(
                tenant=ctx.tenant_slug,
                workflow=workflow,
                target=job_target(ctx),
                inputs=dict(ctx.params.get("inputs") or {}),
                timeout_seconds=job_timeout(ctx),
                idempotency_key=job_key(ctx),
            )

        return job_run(ctx, what=f"workflow {workflow!r}", start=start, workflow=workflow)

    def describe(self, ctx: StepContext) -> dict[str, Any]:
        return {
            "type": self.step_type,
            "target": ctx.target.hostname if ctx.target else None,
            "workflow": ctx.params.get("workflow"),
            "inputs": sorted(str(k) for k in (ctx.params.get("inputs") or {})),
        }
