"""``command`` steps on the worker host, for assets whose connection is ``local`` (docs/contract.md#steps).

Only a superuser creates such an asset (docs/security.md). The command still gets nothing
of the worker: a scrubbed environment (PATH, HOME, LANG and the step's own ``env``), a
fresh private working directory (removed afterwards), and, when the worker runs as root,
the unprivileged ``LOCAL_RUNNER_USER`` (created on demand with ``useradd``), so it cannot
read the settings, the state directory, the database socket or other tenants' secrets.
With ``LOCAL_COMMAND_NETWORK=isolated`` (the default) it runs in a network namespace of its
own (``unshare --net``, then ``setpriv`` drops to the runner user): no interface is up, so
nothing of the host is reachable — its loopback neither, where the product's own web port,
Redis or PostgreSQL may listen. ``host`` gives it the host's network (docs/security.md).

The child is the leader of a new session, so a timeout or a cancel kills the whole tree
(``killpg``), not just the shell: run() holds the group on ``ctx.held`` and the step's
cleanup() kills it and removes the working directory.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings

from execution.enums import ExecutionStatus
from execution.runners.base import StepContext, StepResult
from execution.runners.support import output_cap

KILL_GRACE_SECONDS = 2.0
# The PATH a local command gets: the system's, never the worker's (virtualenv, tooling).
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_user_lock = threading.Lock()


class LocalRunnerUnavailable(RuntimeError):
    """The unprivileged user for local commands does not exist and cannot be created, or the
    command cannot get the network LOCAL_COMMAND_NETWORK asks for."""


@dataclass(frozen=True)
class RunAs:
    uid: int
    gid: int
    name: str


def local_runner_identity() -> RunAs | None:
    """Who a local command runs as: ``LOCAL_RUNNER_USER`` when the worker is root (created on
    demand), else None (the worker's own unprivileged user)."""
    if os.geteuid() != 0:
        return None
    name = str(settings.LOCAL_RUNNER_USER)
    with _user_lock:  # two steps of one worker creating the user at once
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            created = subprocess.run(
                [
                    "useradd",
                    "--system",
                    "--user-group",
                    "--no-create-home",
                    "--home-dir",
                    "/nonexistent",
                    "--shell",
                    "/usr/sbin/nologin",
                    name,
                ],
                capture_output=True,
                text=True,
                timeout=30,
            )
            try:  # another worker process may have created it meanwhile (useradd exit 9)
                entry = pwd.getpwnam(name)
            except KeyError:
                raise LocalRunnerUnavailable(
                    f"cannot create the local runner user {name!r}: {created.stderr.strip()[:200]}"
                ) from None
    if entry.pw_uid == 0:
        raise LocalRunnerUnavailable(f"LOCAL_RUNNER_USER {name!r} is root; local commands never run as root")
    return RunAs(uid=entry.pw_uid, gid=entry.pw_gid, name=name)


_isolation_checked: dict[str, str] = {}


def isolated_network_prefix(run_as: RunAs | None) -> list[str]:
    """The argv that starts a command in a network namespace of its own as ``run_as``
    (``unshare --net`` needs root, so the runner user is taken after it, by ``setpriv``).
    LocalRunnerUnavailable with the reason when this worker cannot: it is not root, the tools
    are missing, or the kernel or container refuses a network namespace (checked once)."""
    if run_as is None:
        raise LocalRunnerUnavailable(
            "LOCAL_COMMAND_NETWORK=isolated needs a worker running as root (it gives each local "
            "command a network namespace of its own); run the worker as root or set "
            "LOCAL_COMMAND_NETWORK=host"
        )
    unshare, setpriv = shutil.which("unshare", path=SAFE_PATH), shutil.which("setpriv", path=SAFE_PATH)
    if unshare is None or setpriv is None:
        raise LocalRunnerUnavailable(
            "LOCAL_COMMAND_NETWORK=isolated needs unshare and setpriv (util-linux) on the worker host"
        )
    if unshare not in _isolation_checked:
        probe = subprocess.run(
            [unshare, "--net", "--", "true"], capture_output=True, text=True, timeout=30, env={}
        )
        _isolation_checked[unshare] = "" if probe.returncode == 0 else (probe.stderr.strip() or "refused")
    refusal = _isolation_checked[unshare]
    if refusal:
        raise LocalRunnerUnavailable(
            f"cannot give a local command a network namespace of its own ({refusal[:200]}); "
            "grant the worker CAP_SYS_ADMIN or set LOCAL_COMMAND_NETWORK=host"
        )
    return [
        unshare,
        "--net",
        "--",
        setpriv,
        f"--reuid={run_as.uid}",
        f"--regid={run_as.gid}",
        "--clear-groups",
        "--",
    ]


def scrubbed_environment(*, home: str, step_env: dict[str, Any]) -> dict[str, str]:
    """PATH, HOME, LANG and the step's own ``env``: nothing of the worker's environment."""
    env = {"PATH": SAFE_PATH, "HOME": home, "LANG": "C.UTF-8"}
    env.update({str(k): str(v) for k, v in step_env.items()})
    return env


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
    try:
        run_as = local_runner_identity()
        prefix = isolated_network_prefix(run_as) if settings.LOCAL_COMMAND_NETWORK == "isolated" else []
    except LocalRunnerUnavailable as exc:
        return StepResult(status=ExecutionStatus.FAILED, error_message=str(exc))
    workdir = tempfile.mkdtemp(prefix="opsconductor-step-")
    try:
        if run_as is not None:
            os.chown(workdir, run_as.uid, run_as.gid)
        proc = _start(ctx, workdir, run_as, prefix)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise

    def release() -> None:
        kill_tree(proc)
        shutil.rmtree(workdir, ignore_errors=True)

    # Held until the command ends; on a cancel or a timeout cleanup() kills the group.
    held = f"local process group {proc.pid}"
    ctx.held.hold(held, release)
    try:
        result = _follow(ctx, proc)
    except BaseException:
        ctx.held.release(held)
        raise
    if result.status not in (ExecutionStatus.CANCELLED, ExecutionStatus.TIMEOUT):
        ctx.held.let_go(held)
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def _start(
    ctx: StepContext, workdir: str, run_as: RunAs | None, prefix: list[str]
) -> subprocess.Popen[bytes]:
    """Start the step's shell command; with a ``prefix`` (isolated network) the prefix drops
    to the runner user itself, after entering the namespace. The group leader's pid is the
    shell's: unshare and setpriv exec into it."""
    params = ctx.params
    env = scrubbed_environment(home=workdir, step_env=params.get("env") or {})
    identity: dict[str, Any] = (
        {"user": run_as.uid, "group": run_as.gid, "extra_groups": []}
        if run_as is not None and not prefix
        else {}
    )
    return subprocess.Popen(  # the step's command is a shell command by contract
        [*prefix, "/bin/sh", "-c", str(params.get("command", ""))],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        umask=0o077,
        **identity,
    )


def _follow(ctx: StepContext, proc: subprocess.Popen[bytes]) -> StepResult:
    """Stream the command's output until it ends, the step is cancelled or its timeout passes
    (then it is left running for cleanup())."""
    cap = output_cap()
    buffers = {"stdout": bytearray(), "stderr": bytearray()}
    pumps = [
        threading.Thread(target=_pump, args=(getattr(proc, name), name, buffers[name], cap, ctx), daemon=True)
        for name in ("stdout", "stderr")
    ]
    for pump in pumps:
        pump.start()
    deadline = time.monotonic() + ctx.timeout_seconds
    ended: str | None = None
    while proc.poll() is None:
        if ctx.cancel_event.wait(0.05):
            ended = ExecutionStatus.CANCELLED
            break
        if time.monotonic() >= deadline:
            ended = ExecutionStatus.TIMEOUT
            break
    for pump in pumps:
        pump.join(0.2 if ended else 5)  # a stopped step answers now with the output so far
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


def describe(ctx: StepContext) -> dict[str, Any]:
    return {
        "connection": "local",
        "command": ctx.params.get("command"),
        "run_as": str(settings.LOCAL_RUNNER_USER) if os.geteuid() == 0 else "the worker's user",
        "network": settings.LOCAL_COMMAND_NETWORK,
    }
