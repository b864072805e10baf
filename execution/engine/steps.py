"""One step through its runner: secrets just in time, timeout, masking, events (§7, §10)."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils import timezone

from execution.engine.watch import Watch
from execution.enums import ActorType, ExecutionStatus
from execution.masking import mask_capped
from execution.models import Execution, ExecutionStep, StoredPolicy
from execution.runners.base import ResolvedTarget, StepContext, StepResult
from execution.runners.registry import get_runner
from execution.services.events import event_record
from execution.services.progress import step_output_emitter, step_output_flush
from execution.services.runner_output import exception_text, step_result_mask

logger = logging.getLogger(__name__)
ARTIFACTS_LIMIT = 10 * 1024


@dataclass
class AttemptState:
    """What the steps of one attempt share."""

    execution: Execution
    policy: StoredPolicy
    watch: Watch
    dry_run: bool
    previous_outputs: dict[int, dict[str, Any]] = field(default_factory=dict)
    # Every secret value resolved during this attempt: masked in everything written.
    secrets: tuple[str, ...] = ()


def _plan_step(execution: Execution, index: int) -> dict[str, Any]:
    steps = (execution.plan_snapshot or {}).get("steps") or []
    return steps[index] if 0 <= index < len(steps) and isinstance(steps[index], dict) else {}


def _target(execution: Execution, step: ExecutionStep, planned: dict[str, Any]) -> ResolvedTarget | None:
    from execution.services.assets import asset_resolve

    target = planned.get("target")
    if not target:
        if step.target_asset_id:
            target = {"asset_id": step.target_asset_id}
        elif step.target_hostname:
            target = {"hostname": step.target_hostname}
    return asset_resolve(tenant=execution.tenant, target=target) if target else None


def step_timeout(state: AttemptState, planned: dict[str, Any]) -> float:
    """The policy's step timeout, or the step's own smaller one, never past timeout_at."""
    timeout = float(state.policy.step_timeout_seconds)
    own = planned.get("timeout_seconds")
    if isinstance(own, (int, float)) and not isinstance(own, bool) and own > 0:
        timeout = min(timeout, float(own))
    if state.execution.timeout_at is not None:
        remaining = (state.execution.timeout_at - timezone.now()).total_seconds()
        timeout = max(0.0, min(timeout, remaining))
    return timeout


def _cap_artifacts(artifacts: dict[str, Any] | None) -> dict[str, Any] | None:
    if artifacts is None:
        return None
    if len(json.dumps(artifacts, default=str).encode()) <= ARTIFACTS_LIMIT:
        return artifacts
    return {"truncated": True, "note": f"artifacts over {ARTIFACTS_LIMIT} bytes were dropped"}


def step_run(*, state: AttemptState, step: ExecutionStep) -> StepResult:
    """Run ``step`` and record it; the result's status is completed/failed/timeout/cancelled."""
    execution = state.execution
    planned = _plan_step(execution, step.step_index)
    if step.status in (ExecutionStatus.RUNNING, ExecutionStatus.FAILED, ExecutionStatus.TIMEOUT):
        step.retry_count += 1  # this step ran before and did not complete: it runs again
    step.status = ExecutionStatus.RUNNING
    step.started_at = timezone.now()
    step.completed_at = None
    step.error_message = ""
    step.save(
        update_fields=["status", "started_at", "completed_at", "error_message", "retry_count", "updated_at"]
    )
    event_record(
        execution=execution,
        event_type="step_started",
        actor_type=ActorType.WORKER,
        step_index=step.step_index,
        to_status=ExecutionStatus.RUNNING,
        details={"name": step.step_name, "type": step.step_type, "retry_count": step.retry_count},
    )
    started = time.monotonic()
    result, resolved = _invoke(state, step, planned)
    duration_ms = int((time.monotonic() - started) * 1000)
    secrets = _values(state, resolved)
    step_output_flush(execution=execution, step_index=step.step_index)
    if resolved is not None:
        resolved.drop()
    _record(step, result, duration_ms, secrets)
    event_record(
        execution=execution,
        event_type="step_completed" if result.status == ExecutionStatus.COMPLETED else "step_failed",
        actor_type=ActorType.WORKER,
        step_index=step.step_index,
        from_status=ExecutionStatus.RUNNING,
        to_status=result.status,
        details=_event_details(step, result, duration_ms, state.dry_run),
        error_message=mask_capped(result.error_message, secrets, cap=2000),
    )
    state.secrets = secrets
    return result


def _event_details(
    step: ExecutionStep, result: StepResult, duration_ms: int, dry_run: bool
) -> dict[str, Any]:
    details: dict[str, Any] = {
        "name": step.step_name,
        "status": result.status,
        "duration_ms": duration_ms,
        "exit_code": result.exit_code,
    }
    if dry_run:
        # Dry run / dark launch (§7): the events say what would have run.
        details["dry_run"] = True
        details["would_run"] = result.output.get("would_run")
    return details


def _invoke(state: AttemptState, step: ExecutionStep, planned: dict[str, Any]) -> tuple[StepResult, Any]:
    """Resolve target and secrets, run (or dry-run) the runner, clean up on cancel/timeout."""
    from execution.secrets import secrets_resolve_for_step

    execution = state.execution
    resolved = None
    try:
        runner = get_runner(step.step_type)
        target = _target(execution, step, planned)
        params = dict(planned.get("params") or {})
        credential: dict[str, str] = {}
        secrets = state.secrets
        if not state.dry_run:
            resolved = secrets_resolve_for_step(
                tenant_slug=execution.tenant.slug,
                params=params,
                target=target,
                execution=execution,
                step_index=step.step_index,
            )
            params, credential, secrets = (
                resolved.params,
                resolved.credential,
                state.secrets + resolved.values,
            )
        ctx = StepContext(
            execution_id=str(execution.execution_id),
            tenant_slug=execution.tenant.slug,
            step_index=step.step_index,
            step_name=step.step_name,
            step_type=step.step_type,
            params=params,
            target=target,
            timeout_seconds=step_timeout(state, planned),
            dry_run=state.dry_run,
            attempt=step.retry_count,
            cancel_event=state.watch.interrupt,
            previous_outputs=state.previous_outputs,
            emit_output=step_output_emitter(execution=execution, step_index=step.step_index, secrets=secrets),
            credential=credential,
        )
    except Exception as exc:  # unknown asset, unresolvable secret, bad step type
        failed = StepResult(status=ExecutionStatus.FAILED, error_message=f"step setup failed: {exc}")
        return step_result_mask(result=failed, secrets=_values(state, resolved)), resolved
    try:
        result = runner.dry_run(ctx) if state.dry_run else runner.run(ctx)
    except Exception as exc:
        logger.exception("runner %s crashed", step.step_type)
        result = StepResult(status=ExecutionStatus.FAILED, error_message=exception_text(exc, secrets))
    # §10: nothing of the runner's leaves unmasked (the error text builds the execution's
    # error, retry and dead-letter reasons).
    step_result_mask(result=result, secrets=secrets)
    reason = state.watch.reason
    if reason in ("cancelled", "timeout") and result.status != ExecutionStatus.COMPLETED:
        result.status = ExecutionStatus.CANCELLED if reason == "cancelled" else ExecutionStatus.TIMEOUT
        if not result.error_message:
            result.error_message = "cancelled" if reason == "cancelled" else "execution timeout"
    if result.status in (ExecutionStatus.CANCELLED, ExecutionStatus.TIMEOUT):
        try:
            runner.cleanup(ctx, "cancelled" if result.status == ExecutionStatus.CANCELLED else "timeout")
        except Exception:
            logger.exception("cleanup of %s failed", step.step_type)
    return result, resolved


def _values(state: AttemptState, resolved: Any) -> tuple[str, ...]:
    return state.secrets + (resolved.values if resolved else ())


def _record(step: ExecutionStep, result: StepResult, duration_ms: int, secrets: tuple[str, ...]) -> None:
    output = result.output  # masked by step_result_mask
    step.status = result.status
    step.completed_at = timezone.now()
    step.duration_ms = duration_ms
    step.exit_code = result.exit_code if result.exit_code is not None else output.get("exit_code")
    step.output_data = output
    step.logs = mask_capped(result.logs, secrets, cap=settings.STEP_OUTPUT_CAP_BYTES)
    step.error_message = mask_capped(result.error_message, secrets, cap=4000)
    step.artifacts = _cap_artifacts(result.artifacts)
    step.save(
        update_fields=[
            "status",
            "completed_at",
            "duration_ms",
            "exit_code",
            "output_data",
            "logs",
            "error_message",
            "artifacts",
            "updated_at",
        ]
    )
