"""``file`` steps over SFTP against the loopback sshd, sha256-verified both ways."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from execution.runners.registry import get_runner
from tests.execution.runners.conftest import make_ctx, ssh_target
from tests.support.sshd import LoopbackSshd

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("loopback_opened")]  # sshd listens on loopback


@pytest.fixture(autouse=True)
def dirs(tmp_path: Path, settings: Any) -> Path:
    settings.SSH_KNOWN_HOSTS_DIR = str(tmp_path / "known_hosts")
    settings.FILE_TRANSFER_DIR = str(tmp_path / "transfers")
    (tmp_path / "transfers" / "acme").mkdir(parents=True)
    (tmp_path / "remote").mkdir()
    return tmp_path


def ctx_for(sshd: LoopbackSshd, params: dict[str, Any], **kwargs: Any) -> Any:
    return make_ctx(
        "file", params, target=ssh_target(sshd), credential={"private_key": sshd.client_private_key}, **kwargs
    )


def test_file_goes_both_ways_with_matching_checksums(sshd: LoopbackSshd, dirs: Path) -> None:
    payload = os.urandom(300_000)
    (dirs / "transfers" / "acme" / "out.bin").write_bytes(payload)
    remote = str(dirs / "remote" / "copy.bin")
    up = get_runner("file").run(
        ctx_for(sshd, {"direction": "upload", "local_path": "out.bin", "remote_path": remote})
    )
    assert up.status == "completed", up.error_message
    assert up.output["sha256"] == up.output["remote_sha256"] == hashlib.sha256(payload).hexdigest()
    assert Path(remote).read_bytes() == payload

    down = get_runner("copy").run(
        ctx_for(sshd, {"direction": "download", "remote_path": remote, "local_path": "back/in.bin"})
    )
    assert down.status == "completed", down.error_message
    assert down.output["sha256"] == down.output["remote_sha256"] == up.output["sha256"]
    assert (dirs / "transfers" / "acme" / "back" / "in.bin").read_bytes() == payload
    assert down.output["verified"] is True


def test_expected_checksum_mismatch_fails(sshd: LoopbackSshd, dirs: Path) -> None:
    result = get_runner("file").run(
        ctx_for(
            sshd,
            {"content": "abc", "remote_path": str(dirs / "remote" / "a.txt"), "expected_sha256": "0" * 64},
        )
    )
    assert result.status == "failed" and "is not the expected" in result.error_message


def test_local_path_cannot_leave_the_tenant_directory(sshd: LoopbackSshd, dirs: Path) -> None:
    runner = get_runner("file")
    assert runner.validate_params(
        {"direction": "upload", "local_path": "../../etc/passwd", "remote_path": "/x"}
    )
    result = runner.run(ctx_for(sshd, {"direction": "upload", "local_path": "../x", "remote_path": "/tmp/x"}))
    assert result.status == "failed" and "leaves the tenant's transfer directory" in result.error_message


def test_dry_run_creates_no_file(sshd: LoopbackSshd, dirs: Path) -> None:
    remote = dirs / "remote" / "never.txt"
    result = get_runner("file").dry_run(
        ctx_for(sshd, {"content": "hello", "remote_path": str(remote)}, dry_run=True)
    )
    assert not remote.exists()
    assert result.output["would_run"]["remote_path"] == str(remote)
    assert result.output["would_run"]["direction"] == "upload"


def test_cancelled_upload_leaves_no_partial_file(sshd: LoopbackSshd, dirs: Path) -> None:
    remote = dirs / "remote" / "partial.bin"
    ctx = ctx_for(sshd, {"content": "x" * 5_000_000, "remote_path": str(remote)})
    ctx.cancel_event.set()  # already cancelled: the first progress callback stops the transfer
    result = get_runner("file").run(ctx)
    assert result.status == "cancelled"
    assert remote.exists() and len(ctx.held.names()) == 1  # left to the engine's cleanup()
    get_runner("file").cleanup(ctx, "cancelled")
    assert not remote.exists() and not ctx.held.names()
