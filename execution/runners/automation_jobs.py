"""Jobs on the Automation Service (docs/services.md), shared by ``command`` steps on an
``automation`` asset and ``workflow`` steps.

- The job key is ``<execution_id>:<step_index>:<attempt>``: the service de-duplicates on it,
  so the client's retried POST (or a second delivery of the same attempt) follows the job
  already started, while a retry of the step (its attempt is one higher) starts a new one.
- A started job is followed until it ends: polled with back-off (``POLL_MIN_SECONDS``, times
  ``POLL_BACKOFF`` while nothing changes, at most ``POLL_MAX_SECONDS``; back to the minimum
  when output arrives), its new output streamed to live progress at each poll. The service
  offers no callback a worker could receive, hence the polling.
- A started job is what the step holds (``ctx.held``): on the engine's interrupt (cancel,
  execution timeout, lost lease) and at the step timeout the step stops following it and the
  step's cleanup() cancels it on the service by its id; when the service cannot be polled any
  more, and when the runner itself crashes, it is cancelled before the step ends. It also
  carries ``timeout_seconds`` (the step timeout plus ``SERVICE_TIMEOUT_GRACE_SECONDS``), so
  the service ends it on its own if it cannot be reached.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from execution.clients.automation import TERMINAL, AutomationServiceClient, automation_service_client
from execution.clients.base import ServiceError
from execution.enums import ExecutionStatus
from execution.errors import NotFound
from execution.runners.base import StepContext, StepResult
from execution.runners.support import cap_text

POLL_MIN_SECONDS = 0.2
POLL_MAX_SECONDS = 2.0
POLL_BACKOFF = 1.5
WORKFLOW_STEPS_KEPT = 100  # per-step states of a workflow kept in the step's output
SERVICE_TIMEOUT_GRACE_SECONDS = 5.0  # our own cancel at the step timeout comes first
REASON_LIMIT = 500  # characters of the service's failure reason kept in the error message


def automation_client() -> AutomationServiceClient:
    client = automation_service_client()
    if client is None:
        raise ServiceError("the Automation Service is not configured (AUTOMATION_SERVICE_URL is not set)")
    return client


def job_key(ctx: StepContext) -> str:
    return f"{ctx.execution_id}:{ctx.step_index}:{ctx.attempt}"


def job_timeout(ctx: StepContext) -> float:
    """The ``timeout_seconds`` a job is started with: the service's backstop."""
    return ctx.timeout_seconds + SERVICE_TIMEOUT_GRACE_SECONDS


def job_target(ctx: StepContext) -> dict[str, Any]:
    t = ctx.target
    if t is None:
        return {}
    return {"asset_id": t.asset_id, "hostname": t.hostname, "address": t.address, "port": t.port}


def job_run(
    ctx: StepContext,
    *,
    what: str,
    start: Callable[[AutomationServiceClient], dict[str, Any]],
    workflow: str = "",
) -> StepResult:
    """Start a job with ``start(client)`` (which passes ``job_key(ctx)``), follow it, and
    return the step's result."""
    try:
        client = automation_client()
    except ServiceError as exc:
        return StepResult(status=ExecutionStatus.FAILED, error_message=f"{what} could not start: {exc}")
    try:
        try:
            job = start(client)
        except (ServiceError, NotFound) as exc:
            return StepResult(status=ExecutionStatus.FAILED, error_message=f"{what} could not start: {exc}")
        job_id = str(job["id"])
        held = f"automation job {job_id}"
        ctx.held.hold(held, lambda: job_cancel(job_id))
        try:
            followed = job_follow(ctx, client, job)
        except BaseException:
            _release_now(ctx, held)  # the runner crashed: leave nothing running on the service
            raise
        if followed.error:
            _release_now(ctx, held)
        elif not followed.stopped:
            ctx.held.let_go(held)
        return job_result(ctx, client, followed, what=what, workflow=workflow)
    finally:
        client.close()


def job_cancel(job_id: str) -> None:
    """Cancel a job on the service: how a step releases the job it holds."""
    client = automation_client()
    try:
        client.job_cancel(job_id=job_id)
    finally:
        client.close()


def _release_now(ctx: StepContext, held: str) -> None:
    # Already ended, or unreachable: the job's own timeout_seconds ends it on the service.
    with contextlib.suppress(ServiceError, NotFound):
        ctx.held.release(held)


@dataclass
class Followed:
    job: dict[str, Any]  # the service's last answer about the job
    stopped: str | None = None  # cancelled / timeout: the step stopped following it
    error: str = ""  # the job could not be followed to its end


def job_follow(ctx: StepContext, client: AutomationServiceClient, job: dict[str, Any]) -> Followed:
    """Follow a started job (the service's start answer) until it ends or must stop (it is
    left running: the caller cancels it)."""
    job_id = str(job["id"])
    deadline = time.monotonic() + ctx.timeout_seconds
    interval = POLL_MIN_SECONDS
    sent = {"stdout": 0, "stderr": 0}
    step_states: dict[str, str] = {}
    ctx.emit_output("automation", f"Automation Service job {job_id} {job.get('status') or 'started'}\n")
    while True:
        try:
            job = client.job_get(job_id=job_id)
        except (ServiceError, NotFound) as exc:
            return Followed(job, error=f"automation job {job_id} could not be followed: {exc}")
        changed = _stream(ctx, job, sent, step_states)
        if job.get("status") in TERMINAL:
            return Followed(job)
        if ctx.cancel_event.wait(max(0.0, min(interval, deadline - time.monotonic()))):
            return Followed(job, stopped=ExecutionStatus.CANCELLED)
        if time.monotonic() >= deadline:
            return Followed(job, stopped=ExecutionStatus.TIMEOUT)
        interval = POLL_MIN_SECONDS if changed else min(interval * POLL_BACKOFF, POLL_MAX_SECONDS)


def _stream(ctx: StepContext, job: dict[str, Any], sent: dict[str, int], states: dict[str, str]) -> bool:
    """Emit what is new since the last poll; returns whether anything was."""
    changed = False
    for index, step in enumerate(job.get("steps") or []):
        if not isinstance(step, dict):
            continue
        name, status = str(step.get("name") or index), str(step.get("status") or "")
        if status and states.get(name) != status:
            states[name] = status
            ctx.emit_output("automation", f"step {name}: {status}\n")
            changed = True
    for stream in ("stdout", "stderr"):
        text = str(job.get(stream) or "")
        if len(text) > sent[stream]:
            ctx.emit_output(stream, text[sent[stream] :])
            sent[stream] = len(text)
            changed = True
    return changed


def job_result(
    ctx: StepContext, client: AutomationServiceClient, followed: Followed, *, what: str, workflow: str = ""
) -> StepResult:
    """The step's result from a followed job; its output names the job and its history link."""
    job = followed.job
    job_id = str(job.get("id"))
    stdout, out_cut = cap_text(str(job.get("stdout") or ""))
    stderr, err_cut = cap_text(str(job.get("stderr") or ""))
    exit_code = job.get("exit_code") if isinstance(job.get("exit_code"), int) else None
    output: dict[str, Any] = {
        "connection": "automation",
        "automation_job_id": job_id,
        "automation_history_url": client.history_url(
            tenant=ctx.tenant_slug, hostname=ctx.target.hostname if ctx.target else "", workflow=workflow
        ),
        "job_status": job.get("status"),
        "stdout": stdout,
        "stderr": stderr,
        "truncated": out_cut or err_cut,
        "exit_code": exit_code,
    }
    if workflow:
        output["workflow"] = workflow
        output["steps"] = [
            {"name": s.get("name"), "status": s.get("status"), "exit_code": s.get("exit_code")}
            for s in (job.get("steps") or [])[:WORKFLOW_STEPS_KEPT]
            if isinstance(s, dict)
        ]
    if followed.stopped:
        why = "cancelled" if followed.stopped == ExecutionStatus.CANCELLED else "step timeout"
        return StepResult(
            status=followed.stopped,
            output=output,
            error_message=f"{why}: {what} job {job_id} cancelled on the Automation Service",
        )
    if followed.error:
        return StepResult(status=ExecutionStatus.FAILED, output=output, error_message=followed.error)
    status = job.get("status")
    if status == "completed" and exit_code in (0, None):
        return StepResult(status=ExecutionStatus.COMPLETED, output=output, exit_code=exit_code)
    reason = str(job.get("reason") or "").strip()[:REASON_LIMIT]
    message = f"{what} job {job_id} ended {status} (exit {exit_code})"
    return StepResult(
        status=ExecutionStatus.TIMEOUT if status == "timeout" else ExecutionStatus.FAILED,
        output=output,
        exit_code=exit_code,
        error_message=f"{message}: {reason}" if reason else message,
    )
