"""A fleet step's targets, run concurrently in rolling batches (docs/fleet.md).

The step's strategy (filled at submission) says how many targets run at once (bounded again
by ``FLEET_PROCESS_THREADS`` per worker process), the batches (a batch ends before the next
begins, ``pause_seconds`` between them) and the failure budget: once more targets than
``max_failures`` have failed no new target starts and the step fails.

Each target runs the step's runner through the same path as any step (``step_target_invoke``:
secrets just in time, timeout, masking, cleanup on cancel) in a pool thread; this thread
writes each start and end to the target's row as it happens (autocommit), so a worker that
dies leaves its completed targets recorded and the resumed step never runs them again. A
cancel (the watcher sets the attempt's interrupt, polled 4 times a second) reaches every
running target's runner at once; the runners stop and clean up in their own threads. Each
target runs in a copy of the attempt thread's context, so its ``opsconductor.target`` span
is a child of the step's span (docs/telemetry.md).
"""

from __future__ import annotations

import contextvars
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import F
from django.utils import timezone

from execution.enums import ActorType, ExecutionStatus, TargetStatus
from execution.masking import mask_capped
from execution.models import StepTarget
from execution.plans.strategy import Strategy
from execution.runners.base import StepResult
from execution.services.events import events_write
from opsconductor import telemetry

S = ExecutionStatus
POLL_SECONDS = 0.1
FAILED_NAMED = 20  # failed hostnames named in the step's error


@dataclass
class _Done:
    row: StepTarget
    result: StepResult
    values: tuple[str, ...]
    duration_ms: int


def _target_text(output: dict[str, Any], secrets: tuple[str, ...]) -> str:
    parts = []
    for name in ("stdout", "stderr"):
        text = output.get(name)
        if isinstance(text, str) and text:
            parts.append(f"[{name}]\n{text}" + ("" if text.endswith("\n") else "\n"))
    return mask_capped("".join(parts), secrets, cap=int(settings.FLEET_TARGET_OUTPUT_CAP_BYTES))


class Fleet:
    """One run of one fleet step in this attempt."""

    def __init__(self, state: Any, step: Any, planned: dict[str, Any]) -> None:
        self.state, self.step, self.planned = state, step, planned
        self.rows = list(
            StepTarget.objects.filter(
                execution_id=state.ctx.execution_id, step_index=step.step_index
            ).order_by("target_index")
        )
        self.strategy = Strategy.of(planned["strategy"], len(self.rows))
        self.failed: list[StepTarget] = []
        self.started: set[int] = set()
        self.events: list[dict[str, Any]] = []
        self.secrets: tuple[str, ...] = ()

    # -- the pool thread -------------------------------------------------------------------
    def _run_one(self, row: StepTarget) -> _Done:
        from execution.worker.steps import step_target_invoke

        began = time.monotonic()
        try:
            with telemetry.span(
                "opsconductor.target", step_index=row.step_index, asset_id=row.asset_id, hostname=row.hostname
            ):
                result, resolved = step_target_invoke(
                    state=self.state,
                    step=self.step,
                    planned=self.planned,
                    reference={"asset_id": row.asset_id},
                )
            values = resolved.values if resolved is not None else ()
            if resolved is not None:
                resolved.drop()
            return _Done(row, result, values, int((time.monotonic() - began) * 1000))
        finally:
            connection.close()  # this thread's own connection (outbound rules, secrets audit)

    # -- this thread -----------------------------------------------------------------------
    def _start(self, row: StepTarget) -> None:
        now = timezone.now()
        StepTarget.objects.filter(pk=row.pk).update(
            status=TargetStatus.RUNNING, attempts=F("attempts") + 1, started_at=now, completed_at=None
        )
        row.status, row.started_at = TargetStatus.RUNNING, now
        self.started.add(row.pk)

    def _finish(self, done: _Done) -> None:
        result, row = done.result, done.row
        self.secrets = self.secrets + done.values
        values = self.state.secrets + self.secrets
        statuses: dict[str, TargetStatus] = {
            S.COMPLETED: TargetStatus.COMPLETED,
            S.CANCELLED: TargetStatus.CANCELLED,
            S.TIMEOUT: TargetStatus.TIMEOUT,
        }
        status = statuses.get(str(result.status), TargetStatus.FAILED)
        exit_code = result.exit_code if result.exit_code is not None else result.output.get("exit_code")
        error = mask_capped(result.error_message, values, cap=2000)
        # Compare-and-swap on running: a row this attempt did not start is not overwritten.
        StepTarget.objects.filter(pk=row.pk, status=TargetStatus.RUNNING).update(
            status=status,
            completed_at=timezone.now(),
            duration_ms=done.duration_ms,
            exit_code=exit_code if isinstance(exit_code, int) else None,
            output=_target_text(result.output, values),
            error=error,
        )
        row.status = status
        if status == TargetStatus.FAILED or status == TargetStatus.TIMEOUT:
            self.failed.append(row)
        details: dict[str, Any] = {
            "target_index": row.target_index,
            "asset_id": row.asset_id,
            "hostname": row.hostname,
            "status": status,
            "exit_code": exit_code if isinstance(exit_code, int) else None,
            "batch": row.batch,
            "duration_ms": done.duration_ms,
        }
        if self.state.dry_run:
            details["would_run"] = result.output.get("would_run")
        self.events.append(
            {
                "event_type": "target_completed" if status == TargetStatus.COMPLETED else "target_failed",
                "actor_type": ActorType.WORKER,
                "step_index": row.step_index,
                "details": details,
                "error_message": error,
            }
        )

    def _flush_events(self) -> None:
        """The targets that ended since the last flush: one INSERT (coalesced per poll)."""
        if self.events:
            events_write(execution=self.state.execution, events=self.events)
            self.events = []

    def _over_budget(self) -> bool:
        return len(self.failed) > self.strategy.max_failures

    def _stopping(self) -> bool:
        return self.state.watched.interrupt.is_set() or self._over_budget()

    def run(self) -> StepResult:
        strategy = self.strategy
        threads = max(1, min(strategy.concurrency, int(settings.FLEET_PROCESS_THREADS)))
        pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fleet")
        interrupt = self.state.watched.interrupt
        try:
            for number, positions in enumerate(strategy.batches()):
                todo = [self.rows[i] for i in positions if self.rows[i].status != TargetStatus.COMPLETED]
                if not todo:
                    continue
                if self._stopping():
                    break
                if self.started and strategy.pause_seconds > 0 and interrupt.wait(strategy.pause_seconds):
                    break
                self.events.append(
                    {
                        "event_type": "fleet_batch_started",
                        "actor_type": ActorType.WORKER,
                        "step_index": self.step.step_index,
                        "details": {"batch": number, "targets": [r.hostname for r in todo]},
                    }
                )
                self._run_batch(pool, todo, threads)
                self._flush_events()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self._flush_events()
        return self._result()

    def _run_batch(self, pool: ThreadPoolExecutor, todo: list[StepTarget], threads: int) -> None:
        waiting = list(todo)
        running: set[Future[_Done]] = set()
        while waiting or running:
            while waiting and len(running) < threads and not self._stopping():
                row = waiting.pop(0)
                self._start(row)
                # A pool thread starts with an empty context: each target runs in a copy of
                # this thread's, so its span is a child of the step span (one trace).
                running.add(pool.submit(contextvars.copy_context().run, self._run_one, row))
            if self._stopping() and not running:
                return
            ended, running_left = wait(running, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            running = set(running_left)
            for future in ended:
                self._finish(future.result())
            if ended:
                self._flush_events()
            if self._stopping():
                waiting = []

    def _result(self) -> StepResult:
        never = [r for r in self.rows if r.status != TargetStatus.COMPLETED and r.pk not in self.started]
        if never:
            StepTarget.objects.filter(pk__in=[r.pk for r in never]).update(status=TargetStatus.SKIPPED)
            for row in never:
                row.status = TargetStatus.SKIPPED
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[row.status] = counts.get(row.status, 0) + 1
        output: dict[str, Any] = {"targets": len(self.rows), **counts}
        if self.state.dry_run:
            output["batches"] = [[self.rows[i].hostname for i in b] for b in self.strategy.batches()]
        reason = self.state.watched.reason
        if reason in ("cancelled", "timeout") and counts.get(TargetStatus.COMPLETED, 0) < len(self.rows):
            status = S.CANCELLED if reason == "cancelled" else S.TIMEOUT
            return StepResult(status=status, output=output, error_message=str(reason))
        if (
            counts.get(TargetStatus.COMPLETED, 0) + len(self.failed) == len(self.rows)
            and not self._over_budget()
        ):
            return StepResult(status=S.COMPLETED, output=output)
        named = ", ".join(r.hostname for r in self.failed[:FAILED_NAMED])
        more = f" and {len(self.failed) - FAILED_NAMED} more" if len(self.failed) > FAILED_NAMED else ""
        error = (
            f"{len(self.failed)} of {len(self.rows)} targets failed (max_failures "
            f"{self.strategy.max_failures}): {named}{more}"
        )
        if counts.get(TargetStatus.SKIPPED):
            error += f"; {counts[TargetStatus.SKIPPED]} not started"
        return StepResult(status=S.FAILED, output=output, error_message=error)


def fleet_step_run(*, state: Any, step: Any, planned: dict[str, Any]) -> tuple[StepResult, tuple[str, ...]]:
    """Run the fleet step's targets not yet completed; the step's result and the secret
    values its targets resolved (masked in everything the attempt writes next)."""
    fleet = Fleet(state, step, planned)
    result = fleet.run()
    return result, fleet.secrets
