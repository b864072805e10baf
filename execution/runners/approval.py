"""``approval`` steps: a gate inside a plan (docs/approvals.md#gates).

The engine does not run a gate: when the attempt reaches it, it parks the execution in
``pending_approval`` (approvals/gates.py) and frees its worker. Params, all optional:
``level`` (1-3, the number of distinct approvers, default 1), ``approvers`` (the role a voter
needs: ``approver`` — approvers and admins — or ``admin``), ``timeout_seconds`` (how long the
gate waits for its votes, default the policy's approval timeout), ``message`` (what the
approvers read) and ``hold_locks`` (keep the execution's asset locks while it waits).
"""

from __future__ import annotations

from typing import Any, ClassVar

from execution.enums import ActionClass, ExecutionStatus
from execution.runners.base import ParamProblem, Runner, StepContext, StepResult
from execution.runners.registry import register

GATE_ROLES = ("approver", "admin")
GATE_MAX_TIMEOUT_SECONDS = 30 * 86400
GATE_MESSAGE_MAX = 2000
GATE_KEYS = {"level", "approvers", "timeout_seconds", "message", "hold_locks"}


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@register
class ApprovalGateRunner(Runner):
    step_type = "approval"
    aliases: ClassVar[tuple[str, ...]] = ("gate",)
    uses_target = False
    gate = True

    def default_action_class(self, params: dict[str, Any]) -> str:
        return ActionClass.READ

    def validate_params(self, params: dict[str, Any]) -> list[ParamProblem]:
        problems = [ParamProblem(key, "unknown gate parameter") for key in sorted(set(params) - GATE_KEYS)]
        level = params.get("level", 1)
        if not _int(level) or not 1 <= level <= 3:
            problems.append(ParamProblem("level", "must be 1, 2 or 3 (the number of distinct approvers)"))
        if params.get("approvers", "approver") not in GATE_ROLES:
            problems.append(ParamProblem("approvers", f"must be one of {list(GATE_ROLES)}"))
        timeout = params.get("timeout_seconds")
        if timeout is not None and (not _int(timeout) or not 60 <= timeout <= GATE_MAX_TIMEOUT_SECONDS):
            problems.append(
                ParamProblem("timeout_seconds", f"must be an integer in [60, {GATE_MAX_TIMEOUT_SECONDS}]")
            )
        message = params.get("message", "")
        if not isinstance(message, str) or len(message) > GATE_MESSAGE_MAX:
            problems.append(ParamProblem("message", f"must be text of at most {GATE_MESSAGE_MAX} characters"))
        if not isinstance(params.get("hold_locks", False), bool):
            problems.append(ParamProblem("hold_locks", "must be true or false"))
        return problems

    def run(self, ctx: StepContext) -> StepResult:
        # Reached only if an engine path forgot to park at the gate: fail rather than pass it.
        return StepResult(
            status=ExecutionStatus.FAILED, error_message="an approval gate is decided by votes, not run"
        )

    def describe(self, ctx: StepContext) -> dict[str, Any]:
        return {"type": self.step_type, "gate": {k: v for k, v in ctx.params.items() if k in GATE_KEYS}}
