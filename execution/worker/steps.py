"""One step through its runner: secrets just in time, timeout, cleanup, masking (docs/contract.md#steps,
docs/contract.md#secrets-and-masking, docs/contract.md#cancellation).

The step's rows and events are written by the attempt (execution/worker/attempt.py) through
the store; this module runs the runner and turns its result into the masked, capped record
the store writes (:func:`step_record`) and the details of its event (:func:`step_event`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils import timezone

from execution.enums import ExecutionStatus, LockScope
from execution.masking import mask_capped, mask_data
from execution.models import Execution
from execution.plans.targets import step_targets
from execution.runners.base import StepContext, StepResult
from execution.runners.kept import KeptConnections
from execution.runners.registry import get_runner
from execution.services.progress import step_output_emitter, step_output_flush
from execution.services.runner_output import exception_text, step_result_mask
from execution.worker.claim import AttemptContext, StepRow
from execution.worker.locks import LockRequest
from execution.worker.watch import Watched
from opsconductor import telemetry

if TYPE_CHECKING:
    from execution.worker.step_shared import StepShared

logger = logging.getLogger(__name__)


@dataclass
class AttemptState:
    """What the steps of one attempt share."""

    ctx: AttemptContext
    execution: Execution  # an unsaved stand-in with the ids the event writers need
    watched: Watched
    dry_run: bool
    previous_outputs: dict[int, dict[str, Any]] = field(default_factory=dict)
    previous_statuses: dict[int, str] = field(default_factory=dict)
    # Every secret value resolved during this attempt: masked in everything written.
    secrets: tuple[str, ...] = ()
    # The asset locks the attempt holds now (lock order; ``step`` scope: the current
    # step's): released by the finish statement.
    held: list[LockRequest] = field(default_factory=list)
    assets: list[str] = field(default_factory=list)
    locks_released: bool = False
    # Connections kept for the attempt's next step on the same target (SSH): closed by
    # attempt_run when the attempt ends.
    connections: KeptConnections = field(default_factory=KeptConnections)


@dataclass
class StepOutcome:
    result: StepResult
    duration_ms: int


def lock_scope(ctx: AttemptContext) -> str:
    """The plan's lock scope (docs/contract.md#asset-locks): ``execution`` unless it says ``step``."""
    return str((ctx.plan_snapshot or {}).get("lock_scope") or LockScope.EXECUTION)


def plan_step(ctx: AttemptContext, index: int) -> dict[str, Any]:
    steps = (ctx.plan_snapshot or {}).get("steps") or []
    return steps[index] if 0 <= index < len(steps) and isinstance(steps[index], dict) else {}


def step_targets_of(ctx: AttemptContext, step: StepRow) -> list[dict[str, Any]]:
    """What ``step`` runs on, as one list: a single target is a fleet of one (docs/fleet.md
    "A single target"). A fleet step's targets as the submission resolved them; a single
    ``target`` as a list of one naming the asset the submission resolved (the step row's:
    the asset its lock and its approval name, not the plan's hostname looked up again); a
    step without a target: []. What the attempt locks and what the step runs on."""
    planned = plan_step(ctx, step.step_index)
    if isinstance(planned.get("targets"), list) or not step.target_asset_id:
        listed = step_targets(planned)
        if listed or not step.target_hostname:
            return listed
        return [{"hostname": step.target_hostname}]
    return [{"asset_id": step.target_asset_id, "hostname": step.target_hostname}]


def step_timeout(state: AttemptState, planned: dict[str, Any]) -> float:
    """The policy's step timeout, or the step's own smaller one, never past timeout_at."""
    timeout = float(state.ctx.step_timeout_seconds)
    own = planned.get("timeout_seconds")
    if isinstance(own, (int, float)) and not isinstance(own, bool) and own > 0:
        timeout = min(timeout, float(own))
    if state.watched.timeout_at is not None:
        remaining = (state.watched.timeout_at - timezone.now()).total_seconds()
        timeout = max(0.0, min(timeout, remaining))
    return timeout


def retry_count_for(step: StepRow) -> int:
    """A step that ran before and did not complete runs again: its retry_count says so."""
    rerun = step.status in (ExecutionStatus.RUNNING, ExecutionStatus.FAILED, ExecutionStatus.TIMEOUT)
    return step.retry_count + 1 if rerun else step.retry_count


def step_invoke(*, state: AttemptState, step: StepRow) -> StepOutcome:
    """Run ``step`` (already marked running); completed/failed/timeout/cancelled."""
    planned = plan_step(state.ctx, step.step_index)
    started = time.monotonic()
    with telemetry.span("opsconductor.step", step_index=step.step_index, step_type=step.step_type) as span:
        if isinstance(planned.get("targets"), list):
            # A fleet step (docs/fleet.md): its targets through the fan-out, each by target_invoke.
            from execution.worker.fanout import fleet_step_run

            result, values = fleet_step_run(state=state, step=step, planned=planned)
            state.secrets = state.secrets + values
            resolved = None
        else:
            # A single target (or none): the same target_invoke, its output streamed live and
            # recorded as the step's (docs/fleet.md "A single target").
            one = step_targets_of(state.ctx, step)[:1]
            result, resolved = target_invoke(
                state=state, step=step, planned=planned, reference=one[0] if one else None, stream=True
            )
        if span is not None:
            span.set_attribute("opsconductor.step_status", str(result.status))
    duration_ms = int((time.monotonic() - started) * 1000)
    if resolved is not None:
        state.secrets = state.secrets + resolved.values
    step_output_flush(execution=state.execution, step_index=step.step_index)
    if resolved is not None:
        resolved.drop()
    return StepOutcome(result=result, duration_ms=duration_ms)


def step_record(state: AttemptState, step: StepRow, outcome: StepOutcome) -> dict[str, Any]:
    """The masked, capped row of a finished step, as the store writes it."""
    result, secrets = outcome.result, state.secrets
    output = mask_data(result.output, secrets)
    return {
        "index": step.step_index,
        "status": result.status,
        "duration_ms": outcome.duration_ms,
        "exit_code": result.exit_code if result.exit_code is not None else output.get("exit_code"),
        "output": output,
        # The step's log: its streams as text (masked, then capped), for pages and downloads.
        "logs": mask_capped(_log_text(output), secrets, cap=settings.STEP_OUTPUT_CAP_BYTES),
        "error": mask_capped(result.error_message, secrets, cap=4000),
    }


def _log_text(output: dict[str, Any]) -> str:
    parts = []
    for name in ("stdout", "stderr"):
        text = output.get(name)
        if isinstance(text, str) and text:
            parts.append(f"[{name}]\n{text}" + ("" if text.endswith("\n") else "\n"))
    return "".join(parts)


def step_event(
    state: AttemptState, step: StepRow, outcome: StepOutcome, record: dict[str, Any]
) -> dict[str, Any]:
    """The ``step_completed``/``step_failed`` event of a finished step (masked)."""
    result = outcome.result
    details: dict[str, Any] = {
        "name": step.step_name,
        "status": result.status,
        "duration_ms": outcome.duration_ms,
        "exit_code": record["exit_code"],
    }
    if state.dry_run:
        # Dry run / dark launch (docs/contract.md#steps): the events say what would have run.
        details["dry_run"] = True
        details["would_run"] = record["output"].get("would_run")
    return {
        "type": "step_completed" if result.status == ExecutionStatus.COMPLETED else "step_failed",
        "from": ExecutionStatus.RUNNING,
        "to": result.status,
        "step": step.step_index,
        "details": mask_data(details, state.secrets),
        "error": mask_capped(record["error"], state.secrets, cap=2000),
    }


def step_started_event(step: StepRow, retry_count: int, *, when: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "step_started",
        "to": ExecutionStatus.RUNNING,
        "step": step.step_index,
        "details": {"name": step.step_name, "type": step.step_type, "retry_count": retry_count},
    }
    if when:
        event["when"] = when
    return event


def _no_output(stream: str, text: str) -> None:
    """A fleet target's output is kept on its record, not streamed."""


def target_invoke(
    *,
    state: AttemptState,
    step: StepRow,
    planned: dict[str, Any],
    reference: dict[str, Any] | None,
    stream: bool,
    shared: StepShared | None = None,
) -> tuple[StepResult, Any]:
    """Run ``step`` on one target (``reference``, from :func:`step_targets_of`; None for a
    step without one): resolve the target and secrets just in time, run (or dry-run) the
    runner with its timeout, clean up on cancel/timeout, mask. The one path of every step's
    target: a single target's (``stream``: live ``step_output`` events) and each of a fleet's
    (execution/worker/fanout.py, in a pool thread: its output kept on its own record, the
    fleet's grid is its live view). ``shared``: a fleet step's lookups made once for its
    targets (execution/worker/step_shared.py; its credentials are dropped by the fleet, not
    the caller). Returns (masked result, the secrets it resolved)."""
    from execution.secrets import secrets_resolve_for_step
    from execution.services.assets import asset_resolve

    ctx = state.ctx
    resolved = None
    try:
        runner = get_runner(step.step_type)
        target = None
        if runner.uses_target and reference is not None:
            target = (
                shared.asset(reference)
                if shared is not None
                else asset_resolve(tenant=state.execution.tenant, target=reference)
            )
        params = dict(planned.get("params") or {})
        credential: dict[str, str] = {}
        secrets = state.secrets
        if not state.dry_run:

            def resolve() -> Any:
                return secrets_resolve_for_step(
                    tenant_slug=ctx.tenant_slug,
                    params=params,
                    target=target,
                    execution=state.execution,
                    step_index=step.step_index,
                )

            resolved = shared.secrets(target, resolve) if shared is not None else resolve()
            params, credential, secrets = (
                resolved.params,
                resolved.credential,
                state.secrets + resolved.values,
            )
        run_ctx = StepContext(
            execution_id=str(ctx.execution_id),
            tenant_slug=ctx.tenant_slug,
            step_index=step.step_index,
            step_name=step.step_name,
            step_type=step.step_type,
            params=params,
            target=target,
            timeout_seconds=step_timeout(state, planned),
            dry_run=state.dry_run,
            attempt=retry_count_for(step),
            cancel_event=state.watched.interrupt,
            previous_outputs=state.previous_outputs,
            previous_statuses=state.previous_statuses,
            emit_output=(
                step_output_emitter(execution=state.execution, step_index=step.step_index, secrets=secrets)
                if stream
                else _no_output
            ),
            credential=credential,
            connections=state.connections,
            environment=shared.environment if shared is not None else None,
            outbound_rules=shared.rules if shared is not None else None,
        )
    except Exception as exc:  # unknown asset, unresolvable secret, bad step type
        failed = StepResult(status=ExecutionStatus.FAILED, error_message=f"step setup failed: {exc}")
        values = state.secrets + (resolved.values if resolved else ())
        return step_result_mask(result=failed, secrets=values), resolved
    try:
        result = runner.dry_run(run_ctx) if state.dry_run else runner.run(run_ctx)
    except Exception as exc:
        logger.exception("runner %s crashed", step.step_type)
        result = StepResult(status=ExecutionStatus.FAILED, error_message=exception_text(exc, secrets))
    # docs/contract.md#secrets-and-masking: nothing of the runner's leaves unmasked (the error text builds
    # the execution's
    # error, retry and dead-letter reasons).
    step_result_mask(result=result, secrets=secrets)
    reason = state.watched.reason
    if reason in ("cancelled", "timeout") and result.status != ExecutionStatus.COMPLETED:
        result.status = ExecutionStatus.CANCELLED if reason == "cancelled" else ExecutionStatus.TIMEOUT
        if not result.error_message:
            result.error_message = "cancelled" if reason == "cancelled" else "execution timeout"
    if result.status in (ExecutionStatus.CANCELLED, ExecutionStatus.TIMEOUT) or reason == "shutdown":
        try:
            runner.cleanup(run_ctx, "timeout" if result.status == ExecutionStatus.TIMEOUT else "cancelled")
        except Exception:
            logger.exception("cleanup of %s failed", step.step_type)
    return result, resolved
