"""The one small interface every step runner implements (docs/contract.md#steps; one vertical slice per type).

A runner gets a :class:`StepContext` (parameters with secrets already resolved, the resolved
target, its timeout, a cancel flag) and returns a :class:`StepResult`. The engine owns
everything around it: status transitions, timing, capping and masking of output, events.
What a step holds outside the worker (a process, a database backend, a remote job) is
registered on ``ctx.held`` and released by :meth:`Runner.cleanup` on a cancel or a timeout
(docs/engine.md#cleanup).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from execution.enums import ActionClass
from execution.outbound.rules import OutboundRules
from execution.runners.kept import KeptConnections

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResolvedTarget:
    """An asset as the runners see it (from the built-in inventory or the Asset Service)."""

    asset_id: str
    hostname: str
    connection_type: str
    address: str = ""
    port: int | None = None
    username: str = ""
    credential_ref: str = ""
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)


class Held:
    """What a running step holds outside the worker's thread, each with how to release it: a
    local process group, a remote process group, a database backend running the statement, a
    job on the Automation Service (docs/engine.md#cleanup).

    run() calls ``hold()`` as soon as it holds the thing and ``let_go()`` once the thing has
    ended by itself. On a cancel or a timeout run() stops waiting and returns with the thing
    still held: the engine's cleanup() releases it. When run() fails on its own it releases
    what it holds before it returns (``release(name)``).
    """

    def __init__(self) -> None:
        self._releases: dict[str, Callable[[], None]] = {}
        self._lock = threading.Lock()

    def hold(self, name: str, release: Callable[[], None]) -> None:
        with self._lock:
            self._releases[name] = release

    def let_go(self, name: str) -> None:
        with self._lock:
            self._releases.pop(name, None)

    def names(self) -> list[str]:
        with self._lock:
            return list(self._releases)

    def release(self, name: str | None = None) -> list[str]:
        """Release ``name``, or everything still held (newest first); returns what was
        released. An entry leaves before its release runs, so nothing is released twice; a
        failing release does not stop the others (the first error is raised after them)."""
        with self._lock:
            if name is None:
                taken = list(reversed(self._releases.items()))
                self._releases.clear()
            else:
                release = self._releases.pop(name, None)
                taken = [(name, release)] if release is not None else []
        failed: Exception | None = None
        for _, release in taken:
            try:
                release()
            except Exception as exc:
                failed = failed or exc
        if failed is not None:
            raise failed
        return [what for what, _ in taken]


@dataclass
class StepContext:
    execution_id: str
    tenant_slug: str
    step_index: int
    step_name: str
    step_type: str
    params: dict[str, Any]
    target: ResolvedTarget | None
    timeout_seconds: float
    dry_run: bool = False
    # How many times this step ran before (its retry_count): 0 on the first run. Part of every
    # key a runner gives a remote service, so a retry starts anew and a repeat of the same
    # attempt does not.
    attempt: int = 0
    # Set by the engine on cancel or timeout; a runner polls it (or waits on it) and stops.
    cancel_event: threading.Event = field(default_factory=threading.Event)
    # Outputs of earlier steps by index (for validate).
    previous_outputs: dict[int, dict[str, Any]] = field(default_factory=dict)
    # Statuses of earlier steps by index (completed, or failed past a continue_on_error).
    previous_statuses: dict[int, str] = field(default_factory=dict)
    # Streams a chunk of output to live progress (masked and batched by the engine).
    emit_output: Callable[[str, str], None] = lambda stream, text: None
    # Resolved credential of the target (password or private key), never stored.
    credential: dict[str, str] = field(default_factory=dict)
    # What the step holds until it ends or cleanup() releases it.
    held: Held = field(default_factory=Held)
    # The attempt's connections kept for its next steps (execution/runners/kept.py); None:
    # the runner closes what it opens (a context built outside an attempt).
    connections: KeptConnections | None = None
    # The execution's environment and its tenant's outbound rules in it, read once for a fleet
    # step's targets (execution/worker/step_shared.py); None: read when a runner asks (the
    # guard still decides for each address either way).
    environment: str | None = None
    outbound_rules: OutboundRules | None = None


@dataclass
class StepResult:
    status: str  # an ExecutionStatus value: completed, failed, timeout or cancelled
    output: dict[str, Any] = field(default_factory=dict)
    error_message: str = ""
    exit_code: int | None = None
    # The target could not be reached (no connection: refused, timed out, its name does not
    # resolve): nothing was sent to it. A fault of the platform, not a result
    # (docs/contract.md#truth): the queue's attempts retry it, then the DLQ (target_unreachable).
    unreachable: bool = False


class TargetUnreachable(ConnectionError):
    """A runner could not connect to its target: nothing was sent (StepResult.unreachable)."""


@dataclass(frozen=True)
class ParamProblem:
    path: str  # relative to the step's params, e.g. "command" or "headers.Authorization"
    message: str


class Runner:
    """Base class; subclasses set ``step_type`` and ``aliases`` and override ``run``."""

    step_type: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    needs_target: ClassVar[bool] = False
    # Touches nothing outside this process and ends at once (noop): the engine may run it
    # before marking the execution running and record start, step and outcome in one
    # statement (docs/engine.md). A runner with any effect, secret or target must not say so.
    inline: ClassVar[bool] = False
    # Reads its target (``ctx.target``): the engine resolves it through the inventory before
    # the step. noop and sleep never look at it (their target is only locked).
    uses_target: ClassVar[bool] = True
    # An approval gate (execution/runners/approval.py): the engine parks the execution here
    # for votes instead of running the step.
    gate: ClassVar[bool] = False

    def default_action_class(self, params: dict[str, Any]) -> str:
        return ActionClass.MODIFY

    def validate_params(self, params: dict[str, Any]) -> list[ParamProblem]:
        return []

    def run(self, ctx: StepContext) -> StepResult:
        raise NotImplementedError

    def cleanup(self, ctx: StepContext, reason: str) -> None:
        """Called by the engine after run() on a cancel or a timeout (reason is 'cancelled' or
        'timeout'): releases what run() still holds (``ctx.held``)."""
        released = ctx.held.release()
        if released:
            logger.info(
                "execution %s step %s %s: released %s",
                ctx.execution_id,
                ctx.step_index,
                reason,
                ", ".join(released),
            )

    def dry_run(self, ctx: StepContext) -> StepResult:
        from execution.enums import ExecutionStatus

        return StepResult(
            status=ExecutionStatus.COMPLETED,
            output={"dry_run": True, "would_run": self.describe(ctx)},
        )

    def describe(self, ctx: StepContext) -> dict[str, Any]:
        """What the step would do, for dry runs (params are masked by the engine)."""
        return {
            "type": self.step_type,
            "target": ctx.target.hostname if ctx.target else None,
            "params": ctx.params,
        }
