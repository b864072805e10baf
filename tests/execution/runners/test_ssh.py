"""``command`` over SSH against a real OpenSSH server on loopback (tests/support/sshd.py)."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest

from execution.runners.connections import ssh
from execution.runners.registry import get_runner
from tests.execution.runners.conftest import make_ctx, ssh_target
from tests.support.sshd import LoopbackSshd, temporary_sh_user, wait_until

# sshd listens on loopback, opened the operator's way (the guard reads the tenant's rules).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("loopback_opened")]


@pytest.fixture(autouse=True)
def known_hosts_dir(tmp_path: Path, settings: Any) -> Path:
    settings.SSH_KNOWN_HOSTS_DIR = str(tmp_path / "known_hosts")
    return tmp_path / "known_hosts"


def test_command_runs_and_streams_output(sshd: LoopbackSshd) -> None:
    chunks: list[tuple[str, str]] = []
    ctx = make_ctx(
        "command",
        {"command": 'echo "hello $GREETING"; echo oops >&2; exit 3', "env": {"GREETING": "from ssh"}},
        target=ssh_target(sshd),
        credential={"private_key": sshd.client_private_key},
        emit_output=lambda stream, text: chunks.append((stream, text)),
    )
    result = ssh.run_command(ctx)
    assert result.status == "failed", result.error_message
    assert result.exit_code == 3
    assert result.output["stdout"] == "hello from ssh\n"
    assert result.output["stderr"] == "oops\n"
    assert ("stdout", "hello from ssh\n") in chunks


def test_the_wrapper_writes_no_file_on_the_target_and_keeps_its_group_id_off_the_output(
    sshd: LoopbackSshd,
) -> None:
    """The command's group id comes back as stdout's first line, read off before the output
    (a pid file in /tmp was written and removed around every command before)."""
    ctx = make_ctx(
        "command",
        {"command": "ls /tmp | grep -c '^opsconductor-.*[.]pid$'; cut -d' ' -f1,5 /proc/$$/stat"},
        target=ssh_target(sshd),
        credential={"private_key": sshd.client_private_key},
    )
    result = ssh.run_command(ctx)
    count, ids = result.output["stdout"].splitlines()
    assert count == "0"
    pid, group = ids.split()
    assert pid == group  # the command is still its own group's leader (what a cancel kills)


def test_host_key_is_recorded_then_enforced(sshd: LoopbackSshd, known_hosts_dir: Path) -> None:
    ctx = make_ctx(
        "command",
        {"command": "true"},
        target=ssh_target(sshd),
        credential={"private_key": sshd.client_private_key},
    )
    assert ssh.run_command(ctx).status == "completed"
    recorded = (known_hosts_dir / "acme" / "known_hosts").read_text()
    assert f"[127.0.0.1]:{sshd.port} ssh-ed25519 {sshd.host_public_key[1]}" in recorded
    # A different key for the same host is refused (a man in the middle, or a rebuilt host).
    (known_hosts_dir / "acme" / "known_hosts").write_text(
        f"[127.0.0.1]:{sshd.port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
    )
    result = ssh.run_command(ctx)
    assert result.status == "failed"
    assert "ssh connect failed" in result.error_message


def test_pinned_host_key_in_asset_metadata(sshd: LoopbackSshd, known_hosts_dir: Path) -> None:
    pinned = " ".join(sshd.host_public_key)
    ctx = make_ctx(
        "command",
        {"command": "echo pinned"},
        target=ssh_target(sshd, host_key=pinned),
        credential={"private_key": sshd.client_private_key},
    )
    result = ssh.run_command(ctx)
    assert result.status == "completed" and result.output["stdout"] == "pinned\n"
    assert not (known_hosts_dir / "acme" / "known_hosts").exists()


def _remote_sleepers(marker: str) -> list[str]:
    # sshd runs on this machine, so the "remote" processes are visible to ps here.
    ps = subprocess.run(["ps", "-eo", "pid,stat,args"], capture_output=True, text=True, check=True).stdout
    return [
        line
        for line in ps.splitlines()
        if marker in line and "ps -eo" not in line and line.split()[1][:1] != "Z"
    ]


def _sleeper_ctx(
    sshd: LoopbackSshd,
    marker: str,
    timeout: float = 120,
    login: str = "",
    ignore_term: bool = False,
    **extra: Any,
) -> Any:
    # A unique duration marks this step's processes in ps: a background child and the
    # foreground sleep (the "sleep 60" of the acceptance, plus a grandchild). ``ignore_term``:
    # both ignore TERM (inherited), so only the backstop's KILL ends them.
    target = ssh_target(sshd)
    trap = "trap '' TERM; " if ignore_term else ""
    return make_ctx(
        "command",
        {"command": f"{trap}sleep {marker} & sleep {marker}"},
        target=dataclasses.replace(target, username=login) if login else target,
        credential={"private_key": sshd.client_private_key},
        timeout=timeout,
        **extra,
    )


def _marker() -> str:
    return f"60.{uuid.uuid4().int % 10**8:08d}"


def _run_in_thread(ctx: Any) -> tuple[threading.Thread, list[Any]]:
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.append(ssh.run_command(ctx)))
    worker.start()
    return worker, results


def _kill_ssh_session_of(marker: str) -> None:
    """SIGKILL the sshd process serving the connection that started ``marker``'s processes:
    the connection drops, the remote process group (its own session) keeps running."""
    pid = int(_remote_sleepers(marker)[0].split()[0])
    while pid > 1:
        stat = Path(f"/proc/{pid}/stat").read_text()
        comm, ppid = (
            stat[stat.index("(") + 1 : stat.rindex(")")],
            int(stat[stat.rindex(")") + 2 :].split()[1]),
        )
        if comm.startswith("sshd"):
            os.kill(pid, signal.SIGKILL)
            return
        pid = ppid
    raise AssertionError(f"no sshd process above {marker}")


def test_cancel_during_sleep_leaves_no_remote_process(sshd: LoopbackSshd) -> None:
    marker = _marker()
    ctx = _sleeper_ctx(sshd, marker)
    worker, results = _run_in_thread(ctx)
    assert wait_until(lambda: len(_remote_sleepers(marker)) >= 2, timeout=30), "remote command never started"
    ctx.cancel_event.set()
    worker.join(timeout=30)
    assert results and results[0].status == "cancelled"
    # run() stopped reading and holds the group: the engine's cleanup() kills it.
    assert len(_remote_sleepers(marker)) >= 2 and len(ctx.held.names()) == 1
    get_runner("command").cleanup(ctx, "cancelled")
    assert not ctx.held.names()
    assert wait_until(lambda: not _remote_sleepers(marker), timeout=15), _remote_sleepers(marker)


@pytest.fixture
def sh_login(sshd: LoopbackSshd) -> Iterator[str]:
    """An account whose login shell is /bin/sh: dash here (sshd runs the wrapper through it)."""
    if not os.path.realpath("/bin/sh").endswith("dash"):
        pytest.skip("/bin/sh is not dash here")
    sshd.dir.chmod(0o711)  # sshd reads the authorized keys as the account
    sshd.authorized.chmod(0o644)
    with temporary_sh_user() as name:
        yield name


def test_a_cancel_stops_the_remote_group_of_a_login_whose_shell_is_dash(
    sshd: LoopbackSshd, sh_login: str
) -> None:
    # dash's kill refuses `kill -TERM -- -<group>` ("Illegal number"): the watchdog's stop and
    # the TERM/KILL backstop both failed, so a cancelled command ran on to its end.
    marker = _marker()
    ctx = _sleeper_ctx(sshd, marker, login=sh_login)
    worker, results = _run_in_thread(ctx)
    assert wait_until(lambda: len(_remote_sleepers(marker)) >= 2, timeout=30), "remote command never started"
    ctx.cancel_event.set()
    worker.join(timeout=30)
    assert results and results[0].status == "cancelled"
    get_runner("command").cleanup(ctx, "cancelled")  # the watchdog's stop, the backstop behind it
    assert not ctx.held.names()
    assert wait_until(lambda: not _remote_sleepers(marker), timeout=15), _remote_sleepers(marker)


def test_the_kill_backstop_stops_the_remote_group_of_a_login_whose_shell_is_dash(
    sshd: LoopbackSshd, sh_login: str
) -> None:
    marker = _marker()
    ctx = _sleeper_ctx(sshd, marker, login=sh_login, ignore_term=True)
    worker, results = _run_in_thread(ctx)
    assert wait_until(lambda: len(_remote_sleepers(marker)) >= 2, timeout=30), "remote command never started"
    ctx.cancel_event.set()
    worker.join(timeout=30)
    assert results and results[0].status == "cancelled"
    _kill_ssh_session_of(marker)  # the watchdog's TERM is ignored: cleanup kills over a new connection
    assert len(_remote_sleepers(marker)) >= 2
    get_runner("command").cleanup(ctx, "cancelled")
    assert wait_until(lambda: not _remote_sleepers(marker), timeout=15), _remote_sleepers(marker)


def test_timeout_kills_remote_process_group(sshd: LoopbackSshd) -> None:
    marker = f"60.{uuid.uuid4().int % 10**8:08d}"
    seen: list[bool] = []
    ctx = make_ctx(
        "command",
        {"command": f"echo started; sleep {marker}"},
        target=ssh_target(sshd),
        credential={"private_key": sshd.client_private_key},
        timeout=4,
        emit_output=lambda stream, text: seen.append(bool(_remote_sleepers(marker)) or True),
    )
    result = ssh.run_command(ctx)
    assert result.status == "timeout"
    assert seen, "the command never started"
    get_runner("command").cleanup(ctx, "timeout")
    assert wait_until(lambda: not _remote_sleepers(marker), timeout=15), _remote_sleepers(marker)


def test_cleanup_reaches_the_remote_group_over_a_new_connection_when_the_steps_one_is_gone(
    sshd: LoopbackSshd,
) -> None:
    marker = _marker()
    ctx = _sleeper_ctx(sshd, marker, ignore_term=True)  # the watchdog's TERM at the drop does nothing
    worker, results = _run_in_thread(ctx)
    assert wait_until(lambda: len(_remote_sleepers(marker)) >= 2, timeout=30), "remote command never started"
    ctx.cancel_event.set()
    worker.join(timeout=30)
    assert results and results[0].status == "cancelled"
    _kill_ssh_session_of(marker)
    assert len(_remote_sleepers(marker)) >= 2
    get_runner("command").cleanup(ctx, "cancelled")
    assert wait_until(lambda: not _remote_sleepers(marker), timeout=15), _remote_sleepers(marker)


def test_a_connection_lost_mid_command_fails_the_step_and_kills_the_remote_group(sshd: LoopbackSshd) -> None:
    # It used to end "command exited with -1" and leave the remote processes running.
    marker = _marker()
    ctx = _sleeper_ctx(sshd, marker)
    worker, results = _run_in_thread(ctx)
    assert wait_until(lambda: len(_remote_sleepers(marker)) >= 2, timeout=30), "remote command never started"
    _kill_ssh_session_of(marker)
    worker.join(timeout=60)
    assert results and results[0].status == "failed"
    assert results[0].error_message == "ssh command failed: the connection closed before the command ended"
    assert not ctx.held.names()
    assert wait_until(lambda: not _remote_sleepers(marker), timeout=15), _remote_sleepers(marker)


CLIENT = """
import sys, time, paramiko
host, port, user, key_path, line = sys.argv[1:6]
client = paramiko.SSHClient()
client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
client.connect(host, int(port), username=user, key_filename=key_path, allow_agent=False, look_for_keys=False)
channel = client.get_transport().open_session()
channel.exec_command(line)
channel.sendall(b"-- end\\n")
print("sent", flush=True)
time.sleep(600)
"""


def test_a_worker_killed_mid_command_leaves_no_remote_process(sshd: LoopbackSshd, tmp_path: Path) -> None:
    """The worker holding the connection dies (kill -9): nobody sends a stop or a kill any
    more, and a resumed step would run the target again beside the old command. The
    watchdog TERMs the group when the session's stdin ends (fleet operator's trial: the 10
    targets running at the kill ran twice at once)."""
    import sys

    marker = _marker()
    key = tmp_path / "client_key"
    key.write_text(sshd.client_private_key)
    key.chmod(0o600)
    line = ssh._wrapped(f"sleep {marker} & sleep {marker}")
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, "127.0.0.1", str(sshd.port), sshd.username, str(key), line],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until(lambda: len(_remote_sleepers(marker)) >= 2, timeout=30), (
            "remote command never started"
        )
        client.kill()  # SIGKILL: no cleanup of any kind from the client
        client.wait(timeout=10)
        assert wait_until(lambda: not _remote_sleepers(marker), timeout=10), _remote_sleepers(marker)
    finally:
        client.kill()
        client.wait(timeout=10)


def test_key_with_passphrase(sshd: LoopbackSshd, tmp_path: Path) -> None:
    from tests.support.sshd import keygen

    private = keygen(tmp_path / "k2", passphrase="correct horse")
    sshd.add_authorized_key((tmp_path / "k2.pub").read_text())
    ctx = make_ctx(
        "command",
        {"command": "echo ok"},
        target=ssh_target(sshd),
        credential={"private_key": private, "passphrase": "correct horse"},
    )
    assert ssh.run_command(ctx).status == "completed"


def test_password_login(sshd: LoopbackSshd) -> None:
    from tests.support.sshd import temporary_password_user

    with temporary_password_user("pw-for-the-loopback-sshd") as user:
        target = ssh_target(sshd)
        target = type(target)(**{**target.__dict__, "username": user})
        ctx = make_ctx(
            "command",
            {"command": "id -un"},
            target=target,
            credential={"password": "pw-for-the-loopback-sshd"},
        )
        result = ssh.run_command(ctx)
        assert result.status == "completed", result.error_message
        assert result.output["stdout"] == f"{user}\n"
        wrong = ssh.run_command(
            make_ctx("command", {"command": "true"}, target=target, credential={"password": "wrong"})
        )
        assert wrong.status == "failed" and "Authentication failed" in wrong.error_message


def test_invalid_env_names_are_refused_before_connecting() -> None:
    ctx = make_ctx("command", {"command": "true", "env": {"A B": "x"}})
    result = ssh.run_command(ctx)
    assert result.status == "failed" and "invalid env variable names" in result.error_message


class _ExitStatusFirst(paramiko.ServerInterface):
    """An SSH server (paramiko's, on loopback) that answers the wrapper's protocol and sends the
    command's exit status before its last output, as RFC 4254 allows and sshd does when it
    reaps the command with output still unsent (seen once in a loaded fresh-clone run)."""

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: Any) -> int:
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_SUCCEEDED

    def check_channel_exec_request(self, channel: Any, command: bytes) -> bool:
        threading.Thread(target=self._run, args=(channel,), daemon=True).start()
        return True

    def _run(self, channel: Any) -> None:
        stdin = channel.makefile("rb")
        while stdin.readline().strip() not in (b"-- end", b""):
            pass
        channel.sendall(b"4242\n")  # the group id's line
        channel.send_exit_status(0)
        time.sleep(0.3)
        channel.sendall(b"late output\n")
        channel.shutdown_write()  # end of file
        time.sleep(0.2)
        channel.close()


@pytest.fixture
def exit_status_first() -> Iterator[int]:
    host_key = paramiko.RSAKey.generate(2048)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    transports: list[paramiko.Transport] = []

    def serve() -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            transport = paramiko.Transport(sock)
            transport.add_server_key(host_key)
            transport.start_server(server=_ExitStatusFirst())
            transports.append(transport)

    threading.Thread(target=serve, daemon=True).start()
    yield int(listener.getsockname()[1])
    listener.close()
    for transport in transports:
        transport.close()


def test_the_output_is_read_to_its_end_of_file_when_the_exit_status_comes_first(
    sshd: LoopbackSshd, exit_status_first: int
) -> None:
    """The runner stopped reading at the exit status, so a completed step could record an
    empty stdout (a fresh-clone run: the canary's `echo` came back empty, exit 0)."""
    target = dataclasses.replace(ssh_target(sshd), port=exit_status_first)
    ctx = make_ctx(
        "command",
        {"command": "echo late output"},
        target=target,
        credential={"private_key": sshd.client_private_key},
    )
    result = ssh.run_command(ctx)
    assert result.status == "completed", result.error_message
    assert result.output["stdout"] == "late output\n"
