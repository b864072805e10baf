"""``sleep`` steps: wait ``params.seconds`` (cancellable); ``fail: true`` makes it fail after."""

from __future__ import annotations

from typing import Any

from execution.enums import ActionClass, ExecutionStatus
from execution.runners.base import ParamProblem, Runner, StepContext, StepResult
from execution.runners.registry import register


@register
class SleepRunner(Runner):
    step_type = "sleep"
    uses_target = False

    def default_action_class(self, params: dict[str, Any]) -> str:
        return ActionClass.READ

    def validate_params(self, params: dict[str, Any]) -> list[ParamProblem]:
        seconds = params.get("seconds", 1)
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not 0 <= seconds <= 86400:
            return [ParamProblem("seconds", "must be a number of seconds between 0 and 86400")]
        return []

    def run(self, ctx: StepContext) -> StepResult:
        seconds = float(ctx.params.get("seconds", 1))
        wait = min(seconds, ctx.timeout_seconds)
        if ctx.cancel_event.wait(wait):
            return StepResult(status=ExecutionStatus.CANCELLED, error_message="cancelled while sleeping")
        if seconds > ctx.timeout_seconds:
            return StepResult(status=ExecutionStatus.TIMEOUT, error_message=f"step timeout after {wait:g}s")
        if ctx.params.get("fail"):
            return StepResult(status=ExecutionStatus.FAILED, error_message="sleep step asked to fail")
        return StepResult(status=ExecutionStatus.COMPLETED, output={"slept_seconds": seconds})
