"""``manage.py serve`` on an address already taken refuses to start with a one-line reason,
instead of printing the URL and logins as if the product were up and then stopping when the
web server failed to listen (seen by a newcomer's trial with a second serve running)."""

from __future__ import annotations

import socket
import subprocess

from tests.support.processes import manage_argv, subprocess_env


def test_serve_on_a_taken_port_says_so_and_prints_no_url() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            manage_argv("serve", "--port", str(port), "--no-demo", "--no-workers"),
            env=subprocess_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode != 0
    assert "is up" not in done.stdout, done.stdout
    reason = done.stderr.strip().splitlines()[-1]
    assert f"127.0.0.1:{port} is not free" in reason and "--port" in reason, done.stderr
