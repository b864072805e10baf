"""``command`` steps on an ``ssh`` asset (paramiko), docs/contract.md#steps and docs/contract.md#cancellation.

Authentication: the asset's ``credential_ref`` is resolved by the engine into
``ctx.credential`` (``password``, or ``private_key`` with an optional ``passphrase``).

Host keys: pinned when the asset's metadata has ``host_key`` (``"<type> <base64>"``, e.g. the
line ``ssh-keyscan`` prints); otherwise *accept-new* in a tenant-scoped known_hosts file
(``<SSH_KNOWN_HOSTS_DIR>/<tenant>/known_hosts``): the first key seen for a host is recorded,
a different key later is refused (``BadHostKeyException``).

Cancel and timeout: the command runs as the leader of a new session on the remote host
(``setsid``) and writes its pid (= its process group id) to a pid file; on cancel or timeout
the channel is closed and ``kill -TERM -- -<pgid>`` then ``kill -KILL`` is sent over a new
channel, so no remote process survives (a plain channel close would leave ``sleep 60``
running without a tty).
"""

from __future__ import annotations

import base64
import io
import re
import shlex
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paramiko  # type: ignore[import-untyped]
from django.conf import settings

from execution.enums import ExecutionStatus
from execution.runners.base import StepContext, StepResult

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEY_CLASSES: tuple[type[paramiko.PKey], ...] = (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey)
# (execution_id, step_index) -> (client, pid file) of a running step, for cleanup().
_running: dict[tuple[str, int], tuple[paramiko.SSHClient, str]] = {}
_running_lock = threading.Lock()


def _load_private_key(text: str, passphrase: str | None) -> paramiko.PKey:
    last: Exception | None = None
    for cls in _KEY_CLASSES:
        try:
            return cls.from_private_key(io.StringIO(text), password=passphrase or None)
        except (paramiko.SSHException, ValueError) as exc:
            last = exc
    raise paramiko.SSHException(f"unsupported or undecryptable private key ({type(last).__name__})")


def known_hosts_path(tenant_slug: str) -> Path:
    return Path(str(settings.SSH_KNOWN_HOSTS_DIR)) / tenant_slug / "known_hosts"


class _AcceptNewPolicy(paramiko.MissingHostKeyPolicy):
    """Record an unknown host's key in the tenant's known_hosts (trust on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as fh:
            fh.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        client.get_host_keys().add(hostname, key.get_name(), key)


def ssh_connect(ctx: StepContext, *, timeout: float | None = None) -> paramiko.SSHClient:
    """An authenticated SSHClient to ctx.target (host key policy as in the module docstring)."""
    target = ctx.target
    if target is None:
        raise ValueError("an ssh step needs a target asset")
    host = target.address or target.hostname
    port = target.port or 22
    client = paramiko.SSHClient()
    host_id = host if port == 22 else f"[{host}]:{port}"
    pinned = (target.metadata or {}).get("host_key")
    if pinned:
        key_type, _, key_b64 = str(pinned).strip().partition(" ")
        key = paramiko.PKey.from_type_string(key_type, base64.b64decode(key_b64.split()[0]))
        client.get_host_keys().add(host_id, key_type, key)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
    else:
        path = known_hosts_path(ctx.tenant_slug)
        if path.exists():
            client.load_system_host_keys(str(path))
        client.set_missing_host_key_policy(_AcceptNewPolicy(path))
    credential = ctx.credential or {}
    pkey = None
    if credential.get("private_key"):
        pkey = _load_private_key(credential["private_key"], credential.get("passphrase"))
    client.connect(
        hostname=host,
        port=port,
        username=target.username or credential.get("username") or None,
        password=credential.get("password") if pkey is None else None,
        pkey=pkey,
        timeout=timeout or min(max(ctx.timeout_seconds, 1.0), 15.0),
        banner_timeout=15,
        auth_timeout=15,
        allow_agent=False,
        look_for_keys=False,
    )
    return client


def _wrapped(command: str, pid_file: str) -> str:
    """The remote command line: env from stdin, the command as a session leader with a pid file."""
    read_env = (
        'while read -r n v; do [ "$n" = "--" ] && break; export "$n=$(printf %s "$v" | base64 -d)"; done; '
    )
    inner = 'echo $$ > "$1"; exec sh -c "$2"'
    return (
        f"{read_env}setsid sh -c {shlex.quote(inner)} opsc {shlex.quote(pid_file)} {shlex.quote(command)}"
        f" </dev/null; rc=$?; rm -f {shlex.quote(pid_file)}; exit $rc"
    )


def _kill_remote(client: paramiko.SSHClient, pid_file: str) -> None:
    pf = shlex.quote(pid_file)
    script = (
        f"if [ -s {pf} ]; then g=$(cat {pf}); kill -TERM -- -$g 2>/dev/null; sleep 1; "
        f"kill -KILL -- -$g 2>/dev/null; rm -f {pf}; fi; true"
    )
    try:
        _, stdout, _ = client.exec_command(script, timeout=10)
        stdout.channel.recv_exit_status()
    except Exception:  # the connection may be gone; cleanup() retries on a new one
        return


def run_command(ctx: StepContext) -> StepResult:
    """Run ``params.command`` on the asset over SSH, streaming output through ctx.emit_output."""
    params = ctx.params
    command = str(params.get("command", ""))
    cap = int(settings.STEP_OUTPUT_CAP_BYTES)
    env: dict[str, Any] = dict(params.get("env") or {})
    bad = [name for name in env if not ENV_NAME.fullmatch(str(name))]
    if bad:
        return StepResult(status=ExecutionStatus.FAILED, error_message=f"invalid env variable names: {bad}")
    if params.get("cwd"):
        command = f"cd {shlex.quote(str(params['cwd']))} && {command}"
    pid_file = f"/tmp/opsconductor-{uuid.uuid4().hex}.pid"  # noqa: S108 - remote path, random name
    try:
        client = ssh_connect(ctx)
    except Exception as exc:
        return StepResult(status=ExecutionStatus.FAILED, error_message=f"ssh connect failed: {exc}")
    key = (ctx.execution_id, ctx.step_index)
    with _running_lock:
        _running[key] = (client, pid_file)
    deadline = time.monotonic() + ctx.timeout_seconds
    out: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
    truncated = False
    ended: str | None = None
    try:
        channel = client.get_transport().open_session()  # type: ignore[union-attr]
        channel.exec_command(_wrapped(command, pid_file))
        for name, value in env.items():
            encoded = base64.b64encode(str(value).encode()).decode()
            channel.sendall(f"{name} {encoded}\n".encode())
        channel.sendall(b"-- end\n")
        channel.shutdown_write()
        while True:
            got = False
            for stream, ready, recv in (
                ("stdout", channel.recv_ready, channel.recv),
                ("stderr", channel.recv_stderr_ready, channel.recv_stderr),
            ):
                if ready():
                    chunk = recv(32768)
                    if chunk:
                        got = True
                        room = cap - len(out[stream])
                        if room > 0:
                            out[stream] += chunk[:room]
                        truncated = truncated or len(chunk) > room
                        ctx.emit_output(stream, chunk.decode(errors="replace"))
            if (
                not got
                and channel.exit_status_ready()
                and not channel.recv_ready()
                and not channel.recv_stderr_ready()
            ):
                break
            if ctx.cancel_event.is_set():
                ended = ExecutionStatus.CANCELLED
                break
            if time.monotonic() >= deadline:
                ended = ExecutionStatus.TIMEOUT
                break
            if not got:
                ctx.cancel_event.wait(0.05)
        output: dict[str, Any] = {
            "stdout": out["stdout"].decode(errors="replace"),
            "stderr": out["stderr"].decode(errors="replace"),
            "truncated": truncated,
            "connection": "ssh",
        }
        if ended:
            channel.close()
            _kill_remote(client, pid_file)
            output["exit_code"] = None
            reason = "cancelled" if ended == ExecutionStatus.CANCELLED else "step timeout"
            return StepResult(
                status=ended, output=output, error_message=f"{reason}: remote process group killed"
            )
        exit_code = channel.recv_exit_status()
        output["exit_code"] = exit_code
        return StepResult(
            status=ExecutionStatus.COMPLETED if exit_code == 0 else ExecutionStatus.FAILED,
            output=output,
            exit_code=exit_code,
            error_message="" if exit_code == 0 else f"command exited with {exit_code}",
        )
    except Exception as exc:
        return StepResult(status=ExecutionStatus.FAILED, error_message=f"ssh command failed: {exc}")
    finally:
        with _running_lock:
            _running.pop(key, None)
        client.close()


def cleanup(ctx: StepContext, reason: str) -> None:
    """Kill the step's remote process group (on cancel or timeout), on a fresh connection if needed."""
    with _running_lock:
        entry = _running.pop((ctx.execution_id, ctx.step_index), None)
    if entry is None:
        return  # run() already killed it and closed the connection
    client, pid_file = entry
    try:
        _kill_remote(client, pid_file)
    finally:
        client.close()


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
