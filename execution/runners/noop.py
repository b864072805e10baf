"""``noop`` steps: do nothing, successfully (tests, drills, benchmarks)."""

from __future__ import annotations

from execution.enums import ActionClass, ExecutionStatus
from execution.runners.base import Runner, StepContext, StepResult
from execution.runners.registry import register


@register
class NoopRunner(Runner):
    step_type = "noop"
    inline = True
    uses_target = False

    def default_action_class(self, params: dict) -> str:  # type: ignore[type-arg]
        return ActionClass.READ

    def run(self, ctx: StepContext) -> StepResult:
        return StepResult(status=ExecutionStatus.COMPLETED, output={"noop": True})
