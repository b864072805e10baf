"""A fleet step's targets, run concurrently in rolling batches (docs/fleet.md).

The step's strategy (filled at submission) says how many targets run at once (bounded again
by ``FLEET_PROCESS_THREADS`` per worker process), the batches (a batch ends before the next
begins, ``pause_seconds`` between them) and the failure budget: once more targets than
``max_failures`` have failed no new target starts and the step fails.

Each target runs the step's runner through the same path as any step (``target_invoke``:
secrets just in time, timeout, masking, cleanup on cancel) in a pool thread; this thread
writes each start and end to the target's row as it happens (committed at once), so a worker that
dies leaves its completed targets recorded and the resumed step never runs them again. A
cancel (the watcher sets the attempt's interrupt, polled 4 times a second) reaches every
running target's runner at once; the runners stop and clean up in their own threads. Each
target runs in a copy of the attempt thread's context, so its ``opsconductor.target`` span
is a child of the step's span (docs/telemetry.md).

Locks in ``step`` scope (docs/fleet.md "Locks"): each target takes its own asset's lock as it
starts (in the transaction that marks it running) and gives it back as it ends (in the one
that records its end), so a target holds at most one lock and never waits holding one. A
target whose asset another execution holds is put aside (``waiting``, the holder named on its
row and in a ``target_waiting`` event) without taking a pool slot; a release notified on
``ops_lock`` (a :class:`~execution.worker.locks.LockListener`) makes it try again. In
``execution`` scope the attempt locked every target before its first step: nothing here.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from execution.enums import ActorType, ExecutionStatus, LockScope, TargetStatus
from execution.masking import mask_capped
from execution.models import StepTarget
from execution.plans.strategy import Strategy
from execution.runners.base import StepResult
from execution.services.events import events_write
from execution.worker.locks import (
    LockBusy,
    LockListener,
    LockRequest,
    lock_mode,
    locks_give,
    locks_take,
    owner_tag,
)
from execution.worker.step_shared import StepShared
from execution.worker.steps import lock_scope, target_invoke
from execution.worker.watch import worker_id
from opsconductor import telemetry

S = ExecutionStatus
POLL_SECONDS = 0.1
FAILED_NAMED = 20  # failed hostnames named in the step's error


@dataclass
class _Aside:
    """A target put aside: its asset's lock is held by another execution."""

    row: StepTarget
    since: float  # time.monotonic() when it was first put aside
    reason: str  # who holds the lock (the row's error while it waits)


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
        # ``step`` scope: each target locks its own asset as it starts (see the module's doc).
        self.locking = lock_scope(state.ctx) == LockScope.STEP
        self.mode = lock_mode(step.action_class)
        self.aside: dict[str, _Aside] = {}  # asset id -> the target waiting for its lock
        self.released: set[str] = set()  # assets put aside whose release was notified
        self.listener: LockListener | None = None
        self.next_look = 0.0  # the backstop: every OPS_LOCK_SWEEP_SECONDS all aside try again
        # Assets, outbound rules and credentials looked up once for the step's targets.
        self.shared = StepShared(
            tenant=state.execution.tenant,
            tenant_slug=state.ctx.tenant_slug,
            environment=state.ctx.environment,
            asset_ids=[r.asset_id for r in self.rows if r.status != TargetStatus.COMPLETED],
        )

    # -- the pool thread -------------------------------------------------------------------
    def _run_one(self, row: StepTarget) -> _Done:
        began = time.monotonic()
        # This thread's own connection (asset, outbound rules, secrets audit) is kept from one
        # target to the next (opening one per target was ~9% of a target's time in the worker)
        # unless an error left it unusable; _close_connections closes it when the step ends.
        connection.close_if_unusable_or_obsolete()
        with telemetry.span(
            "opsconductor.target", step_index=row.step_index, asset_id=row.asset_id, hostname=row.hostname
        ):
            result, resolved = target_invoke(
                state=self.state,
                step=self.step,
                planned=self.planned,
                reference={"asset_id": row.asset_id, "hostname": row.hostname},
                stream=False,
                shared=self.shared,
            )
        values = resolved.values if resolved is not None else ()  # dropped with self.shared
        return _Done(row, result, values, int((time.monotonic() - began) * 1000))

    # -- this thread -----------------------------------------------------------------------
    def _start(self, rows: list[StepTarget]) -> None:
        """Mark ``rows`` running: one UPDATE for the targets started together in a poll."""
        now = timezone.now()
        StepTarget.objects.filter(pk__in=[row.pk for row in rows]).update(
            status=TargetStatus.RUNNING,
            attempts=F("attempts") + 1,
            started_at=now,
            completed_at=None,
            error="",
        )
        for row in rows:
            row.status, row.started_at = TargetStatus.RUNNING, now
            self.started.add(row.pk)

    def _take(self, row: StepTarget) -> bool:
        """Start ``row`` (True), taking its asset's lock first in ``step`` scope; a busy lock
        puts it aside (False). Lock and running mark commit together: the lock rows never
        show a target that is not running, nor a running target without its lock."""
        if not self.locking:
            self._start([row])
            return True
        ctx = self.state.ctx
        with transaction.atomic():
            busy = locks_take(
                tenant_id=ctx.tenant_id,
                execution_id=ctx.execution_id,
                owner=owner_tag(ctx.execution_id, worker_id()),
                requests=[LockRequest(row.asset_id, self.mode)],
                priority=ctx.priority,
            )
            if busy is None:
                self._start([row])
                self.aside.pop(row.asset_id, None)
                return True
            self._put_aside(row, busy)
        return False

    def _put_aside(self, row: StepTarget, busy: LockBusy) -> None:
        """``waiting``, naming the holder (row and ``target_waiting`` event; again when the
        holder changed). The first time, the listener opens and every target aside tries
        again: a release between the take and the LISTEN is not missed."""
        known = self.aside.get(row.asset_id)
        self.aside[row.asset_id] = _Aside(row, known.since if known else time.monotonic(), busy.reason)
        if known is None or known.reason != busy.reason:
            StepTarget.objects.filter(pk=row.pk).update(status=TargetStatus.WAITING, error=busy.reason)
            row.status = TargetStatus.WAITING
            self.events.append(
                {
                    "event_type": "target_waiting",
                    "actor_type": ActorType.WORKER,
                    "step_index": row.step_index,
                    "details": {
                        "target_index": row.target_index,
                        "asset_id": row.asset_id,
                        "hostname": row.hostname,
                        "batch": row.batch,
                        "mode": str(self.mode),
                        "holder_execution_id": busy.holder_execution_id,
                        "ahead_execution_id": busy.ahead_execution_id,
                    },
                    "error_message": busy.reason,
                }
            )
        if self.listener is None:
            self.listener = LockListener()
            self.released.update(self.aside)

    def _give(self, done: list[_Done]) -> None:
        """The ended targets' locks back (``step`` scope), their rows and events, together
        (in ``execution`` scope no transaction: each statement commits alone, as before)."""
        with transaction.atomic() if self.locking else contextlib.nullcontext():
            if self.locking:
                locks_give(
                    execution=self.state.execution,
                    assets=[d.row.asset_id for d in done],
                    reason="target ended",
                )
            for one in done:
                self._finish(one)
            self._flush_events()

    def _wait_too_long(self) -> None:
        """A target aside longer than ``OPS_LOCK_WAIT_LIMIT_SECONDS`` fails, naming the holder
        (it counts against ``max_failures``)."""
        limit = float(settings.LOCK_WAIT_LIMIT_SECONDS)
        for asset, aside in list(self.aside.items()):
            waited = time.monotonic() - aside.since
            if waited <= limit:
                continue
            del self.aside[asset]
            row = aside.row
            error = f"still waiting after {waited:.0f}s: {aside.reason}"
            StepTarget.objects.filter(pk=row.pk).update(
                status=TargetStatus.FAILED, completed_at=timezone.now(), error=error
            )
            row.status = TargetStatus.FAILED
            self.failed.append(row)
            self.started.add(row.pk)  # dealt with in this attempt: not skipped
            self.events.append(
                {
                    "event_type": "target_failed",
                    "actor_type": ActorType.WORKER,
                    "step_index": row.step_index,
                    "details": {
                        "target_index": row.target_index,
                        "asset_id": row.asset_id,
                        "hostname": row.hostname,
                        "status": TargetStatus.FAILED,
                        "exit_code": None,
                        "batch": row.batch,
                        "duration_ms": 0,
                    },
                    "error_message": error,
                }
            )

    def _finish(self, done: _Done) -> None:
        result, row = done.result, done.row
        self.secrets = tuple(dict.fromkeys(self.secrets + done.values))
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
            _close_connections(pool, threads)
            pool.shutdown(wait=True, cancel_futures=True)
            self._flush_events()
            if self.locking:
                # Whatever this execution still holds of the step's assets (an error above, or
                # a target that ended in an attempt whose worker died before it gave it back).
                locks_give(
                    execution=self.state.execution,
                    assets=[r.asset_id for r in self.rows],
                    reason="step ended",
                )
            if self.listener is not None:
                self.listener.close()
            self.shared.drop()
        return self._result()

    def _run_batch(self, pool: ThreadPoolExecutor, todo: list[StepTarget], threads: int) -> None:
        waiting = list(todo)
        running: set[Future[_Done]] = set()
        while waiting or running or self.aside:
            # A slot goes first to a target aside whose lock was released, then to the next.
            for asset in [a for a in self.aside if a in self.released]:
                if len(running) >= threads or self._stopping():
                    break
                self.released.discard(asset)
                row = self.aside[asset].row
                if self._take(row):
                    running.add(self._submit(pool, row))
            # Without step-scope locks the targets that start together get one start UPDATE
            # (committed before any of them runs: a resumed step never runs a completed one).
            fresh: list[StepTarget] = []
            while waiting and len(running) + len(fresh) < threads and not self._stopping():
                row = waiting.pop(0)
                if not self.locking:
                    fresh.append(row)
                elif self._take(row):
                    running.add(self._submit(pool, row))
            if fresh:
                self._start(fresh)
                running.update(self._submit(pool, row) for row in fresh)
            if self._stopping() and not running:
                return  # targets aside were never started: skipped
            if running:
                ended, running_left = wait(running, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
                running = set(running_left)
            else:  # only targets aside: wait for a release (or the stop) here
                ended = set()
            if ended:
                self._give([future.result() for future in ended])
            if self.aside:
                self._note_releases(0.0 if running or ended else POLL_SECONDS)
            self._flush_events()
            if self._stopping():
                waiting = []

    def _submit(self, pool: ThreadPoolExecutor, row: StepTarget) -> Future[_Done]:
        # A pool thread starts with an empty context: each target runs in a copy of this
        # thread's, so its span is a child of the step span (one trace).
        return pool.submit(contextvars.copy_context().run, self._run_one, row)

    def _note_releases(self, timeout: float) -> None:
        """The assets aside whose release was notified (waiting up to ``timeout``); all of them
        every ``OPS_LOCK_SWEEP_SECONDS`` (the backstop of a lost notification); and those aside
        for too long fail."""
        assert self.listener is not None  # opened by the first target put aside
        tenant = self.state.ctx.tenant_id
        self.released.update(a for t, a in self.listener.released(timeout) if t == tenant and a in self.aside)
        if time.monotonic() >= self.next_look:
            self.next_look = time.monotonic() + float(settings.LOCK_SWEEP_SECONDS)
            self.released.update(self.aside)
        self._wait_too_long()

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


def _close_connections(pool: ThreadPoolExecutor, threads: int) -> None:
    """Every pool thread closes its own database connection (Django's are per thread): one
    task per thread, each held at a barrier until all have started, so no thread takes two."""
    barrier = threading.Barrier(threads)

    def close() -> None:
        try:
            barrier.wait(timeout=60)
        finally:
            connection.close()

    for future in [pool.submit(close) for _ in range(threads)]:
        future.exception()


def fleet_step_run(*, state: Any, step: Any, planned: dict[str, Any]) -> tuple[StepResult, tuple[str, ...]]:
    """Run the fleet step's targets not yet completed; the step's result and the secret
    values its targets resolved (masked in everything the attempt writes next)."""
    fleet = Fleet(state, step, planned)
    result = fleet.run()
    return result, fleet.secrets
