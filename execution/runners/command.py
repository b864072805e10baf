"""``command`` steps (docs/contract.md#steps): run on the target's connection (local, ssh, automation)."""

from __future__ import annotations

from typing import Any

from execution.enums import ExecutionStatus
from execution.runners.base import ParamProblem, Runner, StepContext, StepResult
from execution.runners.connections import CONNECTIONS, connection_module
from execution.runners.registry import register


def _connection_type(ctx: StepContext) -> str | None:
    # No target, no connection: only a `local` asset runs anything on the worker host
    # (docs/contract.md#steps).
    return ctx.target.connection_type if ctx.target else None


@register
class CommandRunner(Runner):
    step_type = "command"
    aliases = ("shell", "bash", "script", "ssh_command", "powershell")
    needs_target = True

    def validate_params(self, params: dict[str, Any]) -> list[ParamProblem]:
        problems = []
        command = params.get("command")
        if not isinstance(command, str) or not command.strip():
            problems.append(ParamProblem("command", "a non-empty command string is required"))
        elif len(command) > 16384:
            problems.append(ParamProblem("command", "longer than 16384 characters"))
        env = params.get("env")
        if env is not None and not isinstance(env, dict):
            problems.append(ParamProblem("env", "must be an object of NAME: value"))
        return problems

    def run(self, ctx: StepContext) -> StepResult:
        kind = _connection_type(ctx)
        if kind is None:
            return StepResult(status=ExecutionStatus.FAILED, error_message="a command step needs a target")
        if kind not in CONNECTIONS:
            return StepResult(
                status=ExecutionStatus.FAILED,
                error_message=f"command steps cannot run over a {kind!r} connection",
            )
        return connection_module(kind).run_command(ctx)  # type: ignore[no-any-return]

    def describe(self, ctx: StepContext) -> dict[str, Any]:
        kind = _connection_type(ctx)
        described: dict[str, Any] = {
            "type": self.step_type,
            "target": ctx.target.hostname if ctx.target else None,
        }
        if kind is not None and kind in CONNECTIONS:
            described.update(connection_module(kind).describe(ctx))
        return described
