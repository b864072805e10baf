"""``command`` steps on the worker host: a shell subprocess in its own process group.

The child is the leader of a new session, so a timeout or a cancel kills the whole tree
(``killpg``), not just the shell.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from typing import IO, Any

from execution.enums import ExecutionStatus
from execution.runners.base import StepContext, StepResult
from execution.runners.support import output_cap

KILL_GRACE_SECONDS = 2.0
_running: dict[tuple[str, int], subprocess.Popen[bytes]] = {}
_running_lock = threading.Lock()


def _pump(stream: IO[bytes], name: str, buffer: bytearray, cap: int, ctx: StepContext) -> None:
    try:
        for line in iter(stream.readline, b""):
            room = cap - len(buffer)
            if room > 0:
                buffer += line[:room]
            ctx.emit_output(name, line.decode(errors="replace"))
    except (ValueError, OSError):
        pass  # the pipe was closed under us (process group killed)
    finally:
        stream.close()


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, then SIGKILL it after a grace period."""
    for sig, grace in ((signal.SIGTERM, KILL_GRACE_SECONDS), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(grace)
            # The shell is gone; make sure nothing else of the group survives.
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def run_command(ctx: StepContext) -> StepResult:
    params = ctx.params
    command = str(params.get("command", ""))
    env = dict(os.environ)
    env.update({str(k): str(v) for k, v in (params.get("env") or {}).items()})
    cap = output_cap()
    proc = subprocess.Popen(  # noqa: S602 - the step's command is a shell command by contract
        command,
        shell=True,
        cwd=params.get("cwd") or None,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    key = (ctx.execution_id, ctx.step_index)
    with _running_lock:
        _running[key] = proc
    buffers = {"stdout": bytearray(), "stderr": bytearray()}
    pumps = [
        threading.Thread(target=_pump, args=(getattr(proc, name), name, buffers[name], cap, ctx), daemon=True)
        for name in ("stdout", "stderr")
    ]
    for pump in pumps:
        pump.start()
    deadline = time.monotonic() + ctx.timeout_seconds
    ended: str | None = None
    try:
        while proc.poll() is None:
            if ctx.cancel_event.wait(0.05):
                ended = ExecutionStatus.CANCELLED
                break
            if time.monotonic() >= deadline:
                ended = ExecutionStatus.TIMEOUT
                break
        if ended:
            kill_tree(proc)
    finally:
        with _running_lock:
            _running.pop(key, None)
    for pump in pumps:
        pump.join(5)
    output: dict[str, Any] = {
        "stdout": buffers["stdout"].decode(errors="replace"),
        "stderr": buffers["stderr"].decode(errors="replace"),
        "exit_code": proc.returncode if not ended else None,
        "pid": proc.pid,
        "connection": "local",
    }
    if ended == ExecutionStatus.CANCELLED:
        return StepResult(status=ended, output=output, error_message="cancelled: process group killed")
    if ended == ExecutionStatus.TIMEOUT:
        return StepResult(
            status=ended,
            output=output,
            error_message=f"step timeout after {ctx.timeout_seconds:g}s: process group killed",
        )
    code = proc.returncode
    return StepResult(
        status=ExecutionStatus.COMPLETED if code == 0 else ExecutionStatus.FAILED,
        output=output,
        exit_code=code,
        error_message="" if code == 0 else f"command exited with {code}",
    )


def cleanup(ctx: StepContext, reason: str) -> None:
    with _running_lock:
        proc = _running.pop((ctx.execution_id, ctx.step_index), None)
    if proc is not None and proc.poll() is None:
        kill_tree(proc)


def describe(ctx: StepContext) -> dict[str, Any]:
    return {"connection": "local", "command": ctx.params.get("command"), "cwd": ctx.params.get("cwd")}
