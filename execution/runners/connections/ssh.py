"""``command`` steps on an ``ssh`` asset (paramiko), docs/contract.md#steps and docs/contract.md#cancellation.

Authentication: the asset's ``credential_ref`` is resolved by the engine into
``ctx.credential`` (``password``, or ``private_key`` with an optional ``passphrase``).

Host keys, the outbound check and the TCP connection: ``ssh_login.py``.

Cancel and timeout: the command runs as the leader of a new session on the remote host
(``setsid``) and first prints its pid (= its process group id) as the first line of stdout
(read off before the output is kept; no pid file to write and remove). run() holds that
group on ``ctx.held``; on a cancel or a timeout it stops reading and the step's cleanup()
closes the channel and sends ``kill -TERM -<pgid>`` then ``kill -KILL`` over a new
channel (over a new connection when the step's one is gone), so no remote process survives
(a plain channel close would leave ``sleep 60`` running without a tty). A connection lost
mid-command (no exit status) fails the step and kills the group the same way.

Reuse: within an attempt (``ctx.connections``) a step that ends by itself leaves its
connection for the next step on the same target, login and credential; a step that is
cancelled, times out or loses its connection closes it (docs/fleet.md "Connections").
"""

from __future__ import annotations

import base64
import logging
import re
import shlex
import threading
import time
from dataclasses import dataclass
from typing import Any

import paramiko  # type: ignore[import-untyped]
from django.conf import settings

from execution.enums import ExecutionStatus
from execution.outbound import Checked
from execution.runners.base import StepContext, StepResult, TargetUnreachable
from execution.runners.connections.ssh_login import check_target, connect_timeout, ssh_connect
from execution.runners.kept import credential_digest

logger = logging.getLogger(__name__)
# How long cleanup() waits for the watchdog to end the group before it kills over a new channel.
STOP_WAIT_SECONDS = 1.5
EOF_GRACE_SECONDS = 1.0  # after the exit status, the most its end of file is awaited (_follow)
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _wrapped(command: str) -> str:
    """The remote command line: env from stdin, the command as a session leader that prints
    its pid (its group id) as stdout's first line before it runs the command, and a watchdog
    on stdin: a ``stop`` line TERMs the group at once, through the
    session's own shell (a new channel needs sshd to start a session first, seconds on a
    loaded host; cleanup() still kills over one, as the backstop)."""
    read_env = (
        'while read -r n v; do [ "$n" = "--" ] && break; export "$n=$(printf %s "$v" | base64 -d)"; done; '
    )
    inner = 'echo $$; exec sh -c "$1"'
    # A background list reads /dev/null unless told otherwise: the session's stdin is fd 3.
    # The command's group is $c: a background job of this (non-interactive) shell is no group
    # leader, so setsid makes it one without forking. Builtins only: nothing to fork at a stop.
    # The group as `kill -TERM -$c`, never `kill -TERM -- -$c`: the login shell runs this line,
    # and dash (/bin/sh on Debian, many service accounts' shell) refuses `--` ("Illegal
    # number"), so the group lived on after a cancel.
    # The watchdog TERMs the group on a ``stop`` line and also when stdin ends while the
    # command runs: the connection is gone (its worker was killed, the network dropped), and
    # nobody would stop the command any more: a resumed step running the target again would
    # run beside it. At a normal end the shell kills the watchdog first.
    watchdog = (
        'exec 3<&0; (while read -r l <&3; do [ "$l" = stop ] && break; done; kill -TERM -$c) 2>/dev/null & '
    )
    return (
        f"{read_env}setsid sh -c {shlex.quote(inner)} opsc {shlex.quote(command)} </dev/null & c=$!; "
        f"{watchdog}w=$!; wait $c; rc=$?; kill $w 2>/dev/null; exit $rc"
    )


def _kill_remote(client: paramiko.SSHClient, pgid: int | None) -> None:
    if pgid is None:  # the group never printed its id: it never ran the command
        return
    # No `--`: see _wrapped.
    script = f"kill -TERM -{pgid} 2>/dev/null; sleep 1; kill -KILL -{pgid} 2>/dev/null; true"
    _, stdout, _ = client.exec_command(script, timeout=10)
    stdout.channel.recv_exit_status()


@dataclass
class _RemoteGroup:
    """The remote process group a step holds: its connection, channel and group id (from
    stdout's first line; None until it arrived)."""

    ctx: StepContext
    client: paramiko.SSHClient
    channel: paramiko.Channel | None = None
    pgid: int | None = None

    def release(self) -> None:
        """Kill the group, then close. First through the session's watchdog (a ``stop`` line:
        no new session to start, so every target of a fleet stops within a second even on a
        loaded host); once the wrapper has exited, the TERM/KILL over a new channel that
        catches a process ignoring TERM runs in the background. When the watchdog does not
        answer, that kill runs here (over a new connection when the step's one is gone)."""
        if self._stop_through_watchdog():
            threading.Thread(target=self._kill_and_close, name="ssh-kill-backstop", daemon=True).start()
            return
        self._kill_and_close(raise_errors=True)

    def _stop_through_watchdog(self) -> bool:
        channel = self.channel
        if channel is None or channel.closed:
            return False
        try:
            channel.sendall(b"stop\n")
            deadline = time.monotonic() + STOP_WAIT_SECONDS
            while not channel.exit_status_ready() and time.monotonic() < deadline:
                time.sleep(0.02)
            return bool(channel.exit_status_ready())
        except Exception:
            return False

    def _kill_and_close(self, raise_errors: bool = False) -> None:
        try:
            if self.channel is not None:
                self.channel.close()
            try:
                _kill_remote(self.client, self.pgid)
            except Exception:  # the step's connection is gone: a new one
                with ssh_connect(self.ctx) as fresh:
                    _kill_remote(fresh, self.pgid)
        except Exception:
            if raise_errors:
                raise
            logger.exception("ssh kill backstop of remote group %s failed", self.pgid)
        finally:
            self.client.close()


def run_command(ctx: StepContext) -> StepResult:
    """Run ``params.command`` on the asset over SSH, streaming output through ctx.emit_output."""
    params = ctx.params
    command = str(params.get("command", ""))
    env: dict[str, Any] = dict(params.get("env") or {})
    bad = [name for name in env if not ENV_NAME.fullmatch(str(name))]
    if bad:
        return StepResult(status=ExecutionStatus.FAILED, error_message=f"invalid env variable names: {bad}")
    if params.get("cwd"):
        command = f"cd {shlex.quote(str(params['cwd']))} && {command}"
    kept = ctx.connections
    try:
        checked = check_target(ctx)
        key = _kept_key(ctx, checked)
        client, channel = _session(ctx, checked, kept.take(key) if kept is not None else None)
    except TargetUnreachable as exc:
        return StepResult(
            status=ExecutionStatus.FAILED, error_message=f"target unreachable: {exc}", unreachable=True
        )
    except Exception as exc:
        return StepResult(status=ExecutionStatus.FAILED, error_message=f"ssh connect failed: {exc}")
    group = _RemoteGroup(ctx, client, channel)
    # Held until the command ends; on a cancel or a timeout cleanup() kills the group and
    # closes the connection (it is not kept).
    held = "remote process group"
    ctx.held.hold(held, group.release)
    try:
        result = _follow(ctx, group, command, env)
    except Exception as exc:  # the connection failed: killed over a new one, closed, not kept
        try:
            ctx.held.release(held)
        except Exception as left:
            return StepResult(
                status=ExecutionStatus.FAILED,
                error_message=f"ssh command failed: {exc}; the remote process group was not killed: {left}",
            )
        return StepResult(status=ExecutionStatus.FAILED, error_message=f"ssh command failed: {exc}")
    except BaseException:
        ctx.held.release(held)
        raise
    if result.status not in (ExecutionStatus.CANCELLED, ExecutionStatus.TIMEOUT):
        ctx.held.let_go(held)
        channel.close()
        if kept is not None:  # the attempt's next step on this target reuses it
            kept.give_back(key, client, client.close)
        else:
            client.close()
    return result


def _kept_key(ctx: StepContext, checked: Checked) -> tuple[str, ...]:
    """What a kept connection must match to be reused: the tenant, the checked address and
    port, the login, the pinned host key and the credential (execution/runners/kept.py)."""
    target = ctx.target
    assert target is not None
    credential = ctx.credential or {}
    return (
        "ssh",
        ctx.tenant_slug,
        target.address or target.hostname,
        checked.ip,
        str(checked.port),
        target.username or credential.get("username") or "",
        str((target.metadata or {}).get("host_key") or ""),
        credential_digest(credential),
    )


def _session(
    ctx: StepContext, checked: Checked, kept: paramiko.SSHClient | None
) -> tuple[paramiko.SSHClient, paramiko.Channel]:
    """A session channel over the kept connection while it still answers, else over a new
    connection (nothing has run on the target yet either way)."""
    if kept is not None:
        try:
            return kept, _open_session(ctx, kept)
        except Exception:  # closed by the server or the network since the last step
            kept.close()
    client = ssh_connect(ctx, checked=checked)
    try:
        return client, _open_session(ctx, client)
    except BaseException:
        client.close()
        raise


def _open_session(ctx: StepContext, client: paramiko.SSHClient) -> paramiko.Channel:
    transport = client.get_transport()
    if transport is None or not transport.is_active():
        raise paramiko.SSHException("the connection is closed")
    return transport.open_session(timeout=connect_timeout(ctx))


def _follow(ctx: StepContext, group: _RemoteGroup, command: str, env: dict[str, Any]) -> StepResult:
    """Start the command and stream its output until it ends, the step is cancelled or its
    timeout passes (then the group is left running for cleanup())."""
    cap = int(settings.STEP_OUTPUT_CAP_BYTES)
    deadline = time.monotonic() + ctx.timeout_seconds
    out: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
    truncated = False
    ended: str | None = None
    channel = group.channel
    assert channel is not None  # opened by run_command
    channel.exec_command(_wrapped(command))
    lead: bytearray | None = bytearray()  # stdout until the group id's line ended; then None
    eof_by = 0.0  # once the exit status came: until when its end of file is awaited
    for name, value in env.items():
        encoded = base64.b64encode(str(value).encode()).decode()
        channel.sendall(f"{name} {encoded}\n".encode())
    channel.sendall(b"-- end\n")  # stdin stays open: the watchdog's (see _wrapped)
    while True:
        got = False
        for stream, ready, recv in (
            ("stdout", channel.recv_ready, channel.recv),
            ("stderr", channel.recv_stderr_ready, channel.recv_stderr),
        ):
            if ready():
                chunk = recv(32768)
                if chunk and stream == "stdout" and lead is not None:
                    lead += chunk
                    line, newline, chunk = bytes(lead).partition(b"\n")
                    if not newline:
                        got = True
                        continue
                    lead = None
                    group.pgid = int(line) if line.strip().isdigit() else None
                if chunk:
                    got = True
                    room = cap - len(out[stream])
                    if room > 0:
                        out[stream] += chunk[:room]
                    truncated = truncated or len(chunk) > room
                    ctx.emit_output(stream, chunk.decode(errors="replace"))
        quiet = not got and not channel.recv_ready() and not channel.recv_stderr_ready()
        if quiet and channel.exit_status_ready():
            # The exit status may come before the last output (RFC 4254 allows it; sshd sends
            # it when the command is reaped, with output still to send): the output ends at
            # the channel's end of file, awaited for EOF_GRACE_SECONDS at most (a command that
            # left a background process holding stdout would keep it open).
            eof_by = eof_by or time.monotonic() + EOF_GRACE_SECONDS
            if channel.eof_received or channel.closed or time.monotonic() >= eof_by:
                break
            time.sleep(0.002)
            continue
        if ctx.cancel_event.is_set():
            ended = ExecutionStatus.CANCELLED
            break
        if time.monotonic() >= deadline:
            ended = ExecutionStatus.TIMEOUT
            break
        if not got:
            # Woken by the exit status at once (a short command's end was noticed up to 50 ms
            # late when this waited on the cancel flag); a cancel is seen within 50 ms.
            channel.status_event.wait(0.05)
    output: dict[str, Any] = {
        "stdout": out["stdout"].decode(errors="replace"),
        "stderr": out["stderr"].decode(errors="replace"),
        "truncated": truncated,
        "connection": "ssh",
    }
    if ended:
        output["exit_code"] = None
        reason = "cancelled" if ended == ExecutionStatus.CANCELLED else "step timeout"
        return StepResult(status=ended, output=output, error_message=f"{reason}: remote process group killed")
    exit_code = channel.recv_exit_status()
    if exit_code == -1:  # the channel closed without an exit status: the connection is gone
        raise ConnectionError("the connection closed before the command ended")
    output["exit_code"] = exit_code
    return StepResult(
        status=ExecutionStatus.COMPLETED if exit_code == 0 else ExecutionStatus.FAILED,
        output=output,
        exit_code=exit_code,
        error_message="" if exit_code == 0 else f"command exited with {exit_code}",
    )


def describe(ctx: StepContext) -> dict[str, Any]:
    target = ctx.target
    return {
        "connection": "ssh",
        "host": (target.address or target.hostname) if target else None,
        "port": (target.port or 22) if target else None,
        "username": target.username if target else None,
        "command": ctx.params.get("command"),
        "env": sorted((ctx.params.get("env") or {}).keys()),
    }
