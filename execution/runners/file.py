"""``file`` steps (docs/contract.md#steps): SFTP upload or download to/from an ``ssh`` asset, sha256-verified.

Params: ``direction`` (``upload``|``download``), ``remote_path``, and ``local_path`` (relative
to ``<FILE_TRANSFER_DIR>/<tenant>/``: a tenant cannot read or write the worker's other
files) or, for an upload, inline ``content`` (may be a secret reference); ``expected_sha256``
(optional); ``return_content`` (download: include the capped text in the output).
Both directions check the sha256 of the bytes sent against the sha256 of the bytes stored
on the other side (the remote side by ``sha256sum``, falling back to reading it back).
A cancel or the step timeout stops the transfer at its next chunk; the step's cleanup()
removes a partial upload and closes the connection (``ctx.held``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import shlex
import time
from pathlib import Path
from typing import Any

from django.conf import settings

from execution.enums import ExecutionStatus
from execution.runners.base import ParamProblem, Runner, StepContext, StepResult, TargetUnreachable
from execution.runners.registry import register
from execution.runners.support import cap_text


class _Stopped(Exception):
    """The transfer stops: the step was cancelled or its timeout passed."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


def transfer_root(tenant_slug: str) -> Path:
    base = Path(str(settings.FILE_TRANSFER_DIR))
    return (base / tenant_slug).resolve()


def _local(ctx: StepContext) -> Path:
    root = transfer_root(ctx.tenant_slug)
    path = (root / str(ctx.params["local_path"])).resolve()
    if root != path and root not in path.parents:
        raise ValueError("local_path leaves the tenant's transfer directory")
    return path


def _remote_sha256(client: Any, sftp: Any, remote: str) -> str:
    try:
        _, stdout, _ = client.exec_command(f"sha256sum {shlex.quote(remote)}", timeout=60)
        text = stdout.read().decode()
        if stdout.channel.recv_exit_status() == 0 and text:
            return text.split()[0]
    except Exception:  # noqa: S110 - no shell access (sftp-only account): read the file back instead
        pass
    digest = hashlib.sha256()
    with sftp.open(remote, "rb") as fh:
        for chunk in iter(lambda: fh.read(65536), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _remove_partial_and_close(client: Any, sftp: Any, remote: str, upload: bool) -> None:
    """A stopped upload leaves no partial file behind (docs/contract.md#cancellation)."""
    try:
        if upload:
            with contextlib.suppress(OSError):
                sftp.remove(remote)
    finally:
        client.close()


@register
class FileRunner(Runner):
    step_type = "file"
    aliases = ("copy", "transfer", "file_transfer")
    needs_target = True

    def validate_params(self, params: dict[str, Any]) -> list[ParamProblem]:
        problems = []
        direction = params.get("direction", "upload")
        if direction not in ("upload", "download"):
            problems.append(ParamProblem("direction", "upload or download"))
        if not params.get("remote_path"):
            problems.append(ParamProblem("remote_path", "required"))
        if direction == "download" and not params.get("local_path") and not params.get("return_content"):
            problems.append(ParamProblem("local_path", "required for a download (or return_content)"))
        if direction == "upload" and not params.get("local_path") and "content" not in params:
            problems.append(ParamProblem("local_path", "an upload needs local_path or content"))
        local = str(params.get("local_path", ""))
        if local.startswith("/") or ".." in Path(local).parts:
            problems.append(ParamProblem("local_path", "relative to the tenant's transfer directory"))
        return problems

    def run(self, ctx: StepContext) -> StepResult:
        from execution.runners.connections.ssh_login import ssh_connect

        params = ctx.params
        direction = params.get("direction", "upload")
        remote = str(params["remote_path"])
        deadline = time.monotonic() + ctx.timeout_seconds

        def progress(done: int, total: int) -> None:
            if ctx.cancel_event.is_set():
                raise _Stopped(ExecutionStatus.CANCELLED)
            if time.monotonic() >= deadline:
                raise _Stopped(ExecutionStatus.TIMEOUT)

        try:
            client = ssh_connect(ctx)
        except TargetUnreachable as exc:
            return StepResult(
                status=ExecutionStatus.FAILED, error_message=f"target unreachable: {exc}", unreachable=True
            )
        except Exception as exc:
            return StepResult(status=ExecutionStatus.FAILED, error_message=f"ssh connect failed: {exc}")
        held = f"sftp connection ({direction} {remote})"
        stopped = False
        try:
            sftp = client.open_sftp()
            # Held until the transfer ends; on a cancel or a timeout cleanup() releases it.
            upload = direction == "upload"
            ctx.held.hold(held, lambda: _remove_partial_and_close(client, sftp, remote, upload))
            output: dict[str, Any] = {"direction": direction, "remote_path": remote}
            if direction == "upload":
                if "content" in params and not params.get("local_path"):
                    data = str(params["content"]).encode()
                else:
                    data = _local(ctx).read_bytes()
                    output["local_path"] = str(params["local_path"])
                local_sha = hashlib.sha256(data).hexdigest()
                sftp.putfo(io.BytesIO(data), remote, file_size=len(data), callback=progress, confirm=True)
                remote_sha = _remote_sha256(client, sftp, remote)
                size = len(data)
            else:
                remote_sha = _remote_sha256(client, sftp, remote)
                buffer = bytearray()
                with sftp.open(remote, "rb") as fh:
                    for chunk in iter(lambda: fh.read(65536), b""):
                        buffer += chunk
                        progress(len(buffer), 0)
                data = bytes(buffer)
                local_sha = hashlib.sha256(data).hexdigest()
                if params.get("local_path"):
                    path = _local(ctx)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(data)
                    output["local_path"] = str(params["local_path"])
                if params.get("return_content"):
                    output["content"], output["content_truncated"] = cap_text(data)
                size = len(data)
            output.update({"bytes": size, "sha256": local_sha, "remote_sha256": remote_sha})
            expected = params.get("expected_sha256")
            if remote_sha != local_sha:
                return StepResult(
                    status=ExecutionStatus.FAILED,
                    output=output,
                    error_message=f"sha256 mismatch: sent {local_sha}, other side {remote_sha}",
                )
            if expected and expected != local_sha:
                return StepResult(
                    status=ExecutionStatus.FAILED,
                    output=output,
                    error_message=f"sha256 {local_sha} is not the expected {expected}",
                )
            output["verified"] = True
            return StepResult(status=ExecutionStatus.COMPLETED, output=output)
        except _Stopped as stop:
            stopped = True
            if stop.status == ExecutionStatus.CANCELLED:
                return StepResult(status=ExecutionStatus.CANCELLED, error_message="transfer cancelled")
            return StepResult(
                status=ExecutionStatus.TIMEOUT,
                error_message=f"step timeout after {ctx.timeout_seconds:g}s: transfer stopped",
            )
        except (OSError, ValueError) as exc:
            return StepResult(status=ExecutionStatus.FAILED, error_message=f"{direction} failed: {exc}")
        finally:
            if not stopped:
                ctx.held.let_go(held)
                client.close()

    def describe(self, ctx: StepContext) -> dict[str, Any]:
        params = ctx.params
        return {
            "type": self.step_type,
            "direction": params.get("direction", "upload"),
            "host": (ctx.target.address or ctx.target.hostname) if ctx.target else None,
            "remote_path": params.get("remote_path"),
            "local_path": params.get("local_path"),
            "inline_content_bytes": len(str(params["content"]).encode()) if "content" in params else None,
        }
