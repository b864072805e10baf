"""The SSH runner's TCP connection: no Nagle delay and no delayed ACK in a login's exchanges.

sshd keeps Nagle on for sessions without a tty and writes some answers in two segments, so
with Linux's delayed ACK on the client each of a login's and a session start's exchanges
stalled (120 ms for a login plus ``true`` on loopback instead of 27 ms; bench/fleet.py). The
socket options are read back from the kernel on a real connection to a real sshd.
"""

from __future__ import annotations

import socket

import pytest

from execution.runners.connections import ssh_login
from tests.execution.runners.conftest import make_ctx, ssh_target
from tests.support.sshd import LoopbackSshd, wait_until

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("loopback_opened")]


def test_the_connection_sends_at_once_and_acknowledges_every_read_at_once(sshd: LoopbackSshd) -> None:
    ctx = make_ctx(
        "command",
        {"command": "echo one; echo two"},
        target=ssh_target(sshd, host_key=" ".join(sshd.host_public_key)),  # pinned: no known_hosts
        credential={"private_key": sshd.client_private_key},
    )
    client = ssh_login.ssh_connect(ctx)
    try:
        _, stdout, _ = client.exec_command("echo one; echo two")
        assert stdout.read() == b"one\ntwo\n"
        sock = client.get_transport().sock
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        # After a two-way exchange the kernel is back to delayed ACKs ("pingpong" mode, read as
        # 0) unless the reader asks for quick ones again: the transport's reader blocks in a
        # read at most 0.1 s after the last message, having asked.
        assert wait_until(lambda: sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK) == 1, 2), (
            "TCP_QUICKACK not asked again by the transport's reader"
        )
    finally:
        client.close()
