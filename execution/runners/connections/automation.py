"""``command`` steps on an ``automation`` asset: delegated to the Automation Service (§7).

The job is started with an idempotency key ``<execution_id>:<step_index>:<retry>`` (a
retried POST never starts a second job), polled until it ends, and cancelled there on a
cancel or a step timeout. Resolved ``env`` values travel to the service in the request body
(it is the executor); they are not logged or stored here.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from execution.clients.automation import TERMINAL, AutomationServiceClient, automation_service_client
from execution.clients.base import ServiceError
from execution.enums import ExecutionStatus
from execution.errors import NotFound
from execution.runners.base import StepContext, StepResult
from execution.runners.support import cap_text

POLL_SECONDS = 0.5
# (execution_id, step_index) -> job id, for cleanup().
_jobs: dict[tuple[str, int], str] = {}
_jobs_lock = threading.Lock()


def _client() -> AutomationServiceClient:
    client = automation_service_client()
    if client is None:
        raise ServiceError("the asset's connection is 'automation' but AUTOMATION_SERVICE_URL is not set")
    return client


def _target(ctx: StepContext) -> dict[str, Any]:
    t = ctx.target
    if t is None:
        return {}
    return {"asset_id": t.asset_id, "hostname": t.hostname, "address": t.address, "port": t.port}


def run_command(ctx: StepContext) -> StepResult:
    try:
        client = _client()
        job = client.job_start(
            tenant=ctx.tenant_slug,
            target=_target(ctx),
            command=str(ctx.params.get("command", "")),
            env={str(k): str(v) for k, v in (ctx.params.get("env") or {}).items()},
            timeout_seconds=ctx.timeout_seconds,
            idempotency_key=f"{ctx.execution_id}:{ctx.step_index}",
        )
    except (ServiceError, NotFound) as exc:
        return StepResult(status=ExecutionStatus.FAILED, error_message=f"automation start failed: {exc}")
    job_id = str(job["id"])
    key = (ctx.execution_id, ctx.step_index)
    with _jobs_lock:
        _jobs[key] = job_id
    deadline = time.monotonic() + ctx.timeout_seconds
    sent = {"stdout": 0, "stderr": 0}
    ended: str | None = None
    try:
        while True:
            try:
                job = client.job_get(job_id=job_id)
            except (ServiceError, NotFound) as exc:
                return StepResult(
                    status=ExecutionStatus.FAILED, error_message=f"automation poll failed: {exc}"
                )
            for stream in ("stdout", "stderr"):
                text = str(job.get(stream) or "")
                if len(text) > sent[stream]:
                    ctx.emit_output(stream, text[sent[stream] :])
                    sent[stream] = len(text)
            if job.get("status") in TERMINAL:
                break
            if ctx.cancel_event.wait(POLL_SECONDS):
                ended = ExecutionStatus.CANCELLED
            elif time.monotonic() >= deadline:
                ended = ExecutionStatus.TIMEOUT
            if ended:
                _cancel(client, job_id)
                break
    finally:
        with _jobs_lock:
            _jobs.pop(key, None)
        client.close()
    stdout, out_cut = cap_text(str(job.get("stdout") or ""))
    stderr, err_cut = cap_text(str(job.get("stderr") or ""))
    exit_code = job.get("exit_code")
    output = {
        "stdout": stdout,
        "stderr": stderr,
        "truncated": out_cut or err_cut,
        "exit_code": exit_code,
        "connection": "automation",
        "automation_job_id": job_id,
    }
    if ended:
        return StepResult(
            status=ended, output=output, error_message=f"{ended}: automation job {job_id} cancelled"
        )
    ok = job.get("status") == "completed" and exit_code in (0, None)
    return StepResult(
        status=ExecutionStatus.COMPLETED if ok else ExecutionStatus.FAILED,
        output=output,
        exit_code=exit_code,
        error_message="" if ok else f"automation job {job_id} ended {job.get('status')} (exit {exit_code})",
    )


def _cancel(client: AutomationServiceClient, job_id: str) -> None:
    # Already ended, or unreachable: the job's own timeout_seconds ends it on the service.
    with contextlib.suppress(ServiceError, NotFound):
        client.job_cancel(job_id=job_id)


def cleanup(ctx: StepContext, reason: str) -> None:
    with _jobs_lock:
        job_id = _jobs.pop((ctx.execution_id, ctx.step_index), None)
    if job_id is None:
        return
    client = automation_service_client()
    if client is not None:
        _cancel(client, job_id)
        client.close()


def describe(ctx: StepContext) -> dict[str, Any]:
    return {
        "connection": "automation",
        "target": _target(ctx),
        "command": ctx.params.get("command"),
        "env": sorted((ctx.params.get("env") or {}).keys()),
    }
