"""A command on a local asset reaches nothing of the host's network (docs/security.md "A local
command and the network").

The finding: a local command opened TCP connections like any process of the
worker host, the product's own HTTP port on loopback included. Now, with
``LOCAL_COMMAND_NETWORK=isolated`` (the default), it runs in a network namespace of its own.
Real listeners stand where the product's web port would be (127.0.0.1 and ::1, and this
host's other addresses); the same command with ``host`` reaches them, which shows the
listeners count what arrives.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from execution.runners.base import ResolvedTarget
from execution.runners.connections import local
from tests.execution.runners.conftest import make_ctx
from tests.support.listener import CountingListener

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(os.geteuid() != 0, reason="a network namespace of its own needs a root worker"),
]

# Connects to each host:port given and prints one line per attempt.
PROBE = (
    "/usr/bin/python3 -c '"
    "import socket, sys\n"
    "for where in sys.argv[1:]:\n"
    '    host, port = where.rsplit(":", 1)\n'
    "    try:\n"
    '        socket.create_connection((host, int(port)), timeout=3).close(); print("REACHED", where)\n'
    "    except OSError as e:\n"
    '        print("DENIED", where, e.errno)\n'
    "'"
)


class _Listener:
    """One address of this host, listening and counting (for the non-loopback addresses)."""

    def __init__(self, address: str) -> None:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind((address, 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.address, self.port = address, self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(2)


@pytest.fixture
def host_listeners() -> Iterator[tuple[CountingListener, list[_Listener]]]:
    others = []
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                with contextlib.suppress(OSError):
                    others.append(_Listener(address.address))
    with CountingListener() as loopback:
        try:
            yield loopback, others
        finally:
            for other in others:
                other.close()


def _probe(loopback: CountingListener, others: list[_Listener], **settings_: Any) -> Any:
    targets = [f"127.0.0.1:{loopback.port}", f"::1:{loopback.port}"]
    targets += [f"{o.address}:{o.port}" for o in others]
    command = " ".join([PROBE, *targets])
    target = ResolvedTarget(asset_id="1", hostname="local-1", connection_type="local")
    return local.run_command(make_ctx("command", {"command": command}, target=target, timeout=30))


def test_a_local_command_reaches_nothing_of_the_hosts_network(
    host_listeners: tuple[CountingListener, list[_Listener]],
) -> None:
    loopback, others = host_listeners
    result = _probe(loopback, others)
    assert result.status == "completed", (result.error_message, result.output)
    lines = result.output["stdout"].splitlines()
    assert len(lines) == 2 + len(others), lines
    assert all(line.startswith("DENIED") for line in lines), lines
    assert loopback.accepted == 0
    assert [o.accepted for o in others] == [0] * len(others)
    assert local.describe(make_ctx("command", {"command": "true"}))["network"] == "isolated"


def test_with_the_hosts_network_the_same_command_reaches_the_listeners(
    host_listeners: tuple[CountingListener, list[_Listener]], settings: Any
) -> None:
    """The control, and what LOCAL_COMMAND_NETWORK=host means: loopback is reachable."""
    settings.LOCAL_COMMAND_NETWORK = "host"
    loopback, others = host_listeners
    result = _probe(loopback, others)
    assert result.status == "completed", (result.error_message, result.output)
    assert loopback.accepted == 2, result.output["stdout"]
    assert [o.accepted for o in others] == [1] * len(others)


def test_the_command_still_runs_as_the_runner_user_with_its_own_session() -> None:
    target = ResolvedTarget(asset_id="1", hostname="local-1", connection_type="local")
    command = "echo \"$(id -u) $(id -g) $(id -G) $$ $(cut -d' ' -f6 /proc/$$/stat)\""
    result = local.run_command(make_ctx("command", {"command": command}, target=target))
    assert result.status == "completed", result.error_message
    uid, gid, groups, shell_pid, session = result.output["stdout"].split(" ", 4)[:5]
    runner = local.local_runner_identity()
    assert runner is not None
    assert (int(uid), int(gid), groups) == (runner.uid, runner.gid, str(runner.gid))
    # unshare and setpriv exec into the shell: the pid kill_tree signals is the shell's group
    assert int(shell_pid) == result.output["pid"] == int(session.strip())


def test_a_worker_that_is_not_root_refuses_an_isolated_local_command() -> None:
    with pytest.raises(local.LocalRunnerUnavailable, match="LOCAL_COMMAND_NETWORK=host"):
        local.isolated_network_prefix(None)
