"""An attempt's kept SSH connections (execution/runners/kept.py) against a real sshd on loopback:
reused by the next step, replaced when the server closed it, never kept by a cancelled step,
and not reused with another credential. Logins are counted at the server (LogLevel INFO)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from execution.runners.connections import ssh
from execution.runners.kept import KeptConnections
from execution.runners.registry import get_runner
from tests.execution.runners.conftest import make_ctx, ssh_target
from tests.execution.runners.test_ssh import _marker, _remote_sleepers, _run_in_thread, _sleeper_ctx
from tests.support.sshd import LoopbackSshd, keygen, wait_until

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("loopback_opened")]


@pytest.fixture(autouse=True)
def known_hosts_dir(tmp_path: Path, settings: Any) -> None:
    settings.SSH_KNOWN_HOSTS_DIR = str(tmp_path / "known_hosts")


@pytest.fixture(scope="module")
def counted() -> Iterator[LoopbackSshd]:
    server = LoopbackSshd(log_level="INFO").start()
    try:
        yield server
    finally:
        server.stop()


def _ctx(server: LoopbackSshd, kept: KeptConnections, command: str = "true", **extra: Any) -> Any:
    extra.setdefault("credential", {"private_key": server.client_private_key})
    return make_ctx("command", {"command": command}, target=ssh_target(server), connections=kept, **extra)


def test_the_next_step_reuses_the_connection_until_the_attempt_closes_it(counted: LoopbackSshd) -> None:
    kept, before = KeptConnections(), counted.logins()
    for _ in range(3):
        assert ssh.run_command(_ctx(counted, kept)).status == "completed"
    assert counted.logins() - before == 1 and len(kept) == 1
    kept.close_all()
    assert len(kept) == 0
    assert wait_until(lambda: counted.open_connections() == 0, timeout=15)
    # Given back after the attempt's end: closed, not kept.
    assert ssh.run_command(_ctx(counted, kept)).status == "completed"
    assert len(kept) == 0


def test_a_kept_connection_the_server_closed_is_replaced(counted: LoopbackSshd) -> None:
    kept, before = KeptConnections(), counted.logins()
    assert ssh.run_command(_ctx(counted, kept)).status == "completed"
    for process in psutil.Process(counted.proc.pid).children():  # type: ignore[union-attr]
        process.kill()  # sshd's process of the kept connection: the connection drops
    assert wait_until(lambda: counted.open_connections() == 0, timeout=15)
    result = ssh.run_command(_ctx(counted, kept, "echo again"))
    assert result.status == "completed" and result.output["stdout"] == "again\n", result.error_message
    assert counted.logins() - before == 2
    kept.close_all()


def test_a_cancelled_step_closes_its_connection(counted: LoopbackSshd) -> None:
    kept, marker = KeptConnections(), _marker()
    ctx = _sleeper_ctx(counted, marker, connections=kept)
    worker, results = _run_in_thread(ctx)
    assert wait_until(lambda: len(_remote_sleepers(marker)) >= 2, timeout=30), "remote command never started"
    ctx.cancel_event.set()
    worker.join(timeout=30)
    get_runner("command").cleanup(ctx, "cancelled")
    assert results[0].status == "cancelled" and len(kept) == 0
    assert wait_until(lambda: not _remote_sleepers(marker), timeout=15), _remote_sleepers(marker)
    assert wait_until(lambda: counted.open_connections() == 0, timeout=15)


def test_another_credential_gets_a_connection_of_its_own(counted: LoopbackSshd, tmp_path: Path) -> None:
    other = keygen(tmp_path / "other_key")
    counted.add_authorized_key((tmp_path / "other_key.pub").read_text())
    kept, before = KeptConnections(), counted.logins()
    assert ssh.run_command(_ctx(counted, kept)).status == "completed"
    assert ssh.run_command(_ctx(counted, kept, credential={"private_key": other})).status == "completed"
    assert counted.logins() - before == 2 and len(kept) == 2
    kept.close_all()
