"""The suite's own Redis for the tests (and bench runs) of the channels_redis delivery path.

``suite_redis_url()`` answers ``OPS_TEST_REDIS_URL`` when it is set. Otherwise it starts
Debian's ``redis-server`` once per test process (each xdist worker gets its own) on a free
loopback port, with its data and log in a temporary directory and persistence off, and
``stop_suite_redis()`` (called from ``pytest_sessionfinish`` in tests/conftest.py, and at exit
as a fallback) stops it and removes the directory. ``ensure_redis_server()`` installs the
``redis-server`` package with apt-get when the binary is missing (as root) and says so on
stderr, like tests/support/sshd.py does for sshd. Nothing depends on a Redis the machine
may or may not run as a service.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.processes import free_port, wait_for_port

REDIS_SERVER = "/usr/bin/redis-server"


def ensure_redis_server() -> str:
    if os.path.exists(REDIS_SERVER):
        return REDIS_SERVER
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise RuntimeError(f"{REDIS_SERVER} is missing and cannot be installed here (needs root and apt-get)")
    print("redis tests: installing Debian's redis-server with apt-get ...", file=sys.stderr, flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, capture_output=True)
    result = subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "redis-server"],
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0 or not os.path.exists(REDIS_SERVER):
        raise RuntimeError(f"could not install redis-server: {result.stderr[-500:]}")
    return REDIS_SERVER


class LoopbackRedis:
    """``redis-server`` on 127.0.0.1:<free port>, no persistence, everything in a temp dir."""

    def __init__(self) -> None:
        self.binary = ensure_redis_server()
        self.dir = Path(tempfile.mkdtemp(prefix="opsc-redis-"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> LoopbackRedis:
        log = self.dir / "redis.log"
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--logfile",
                str(log),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C of the suite reaches pytest, which stops it
        )
        try:
            wait_for_port(self.port, timeout=30)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"redis-server did not start: {log.read_text()[-800:]}") from None
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


_server: LoopbackRedis | None = None


def suite_redis_url() -> str:
    """The Redis URL the suite's channels_redis tests use (started on first use)."""
    global _server
    configured = os.environ.get("OPS_TEST_REDIS_URL")
    if configured:
        return configured
    if _server is None:
        _server = LoopbackRedis().start()
        atexit.register(stop_suite_redis)
    return _server.url


def stop_suite_redis() -> None:
    global _server
    if _server is not None:
        _server.stop()
        _server = None
