"""Child-process supervision for ``manage.py serve``: start, watch, stop in order.

Children get SIGTERM from the kernel if ``serve`` itself dies (even by SIGKILL), through
``PR_SET_PDEATHSIG``, so a killed ``serve`` never leaves a web server holding the port.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # not Linux: serve's own signal handling still stops children


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            self.argv,
            env=env,
            start_new_session=True,  # Ctrl-C reaches serve only; serve stops children in order
            preexec_fn=_die_with_parent,
        )

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self, timeout: float) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)


class Supervisor:
    """Runs children until a stop is requested (signal) or one of them exits."""

    def __init__(self, children: list[Child]) -> None:
        self.children = children
        self.stop_requested = False

    def request_stop(self, signum: int, frame: object) -> None:
        # Signal handlers only set a flag; the loop does the work.
        self.stop_requested = True

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)

    def start_all(self, env: dict[str, str] | None = None) -> None:
        for child in self.children:
            child.start(env)

    def first_exited(self) -> Child | None:
        for child in self.children:
            if child.exited() is not None:
                return child
        return None

    def wait(self, poll_seconds: float = 0.5) -> Child | None:
        """Block until a stop is requested (returns None) or a child exits (returns it)."""
        while not self.stop_requested:
            dead = self.first_exited()
            if dead is not None:
                return dead
            time.sleep(poll_seconds)
        return None

    def stop_all(self, timeout: float = 30.0) -> None:
        # Workers first so they drain while the web still answers, then the web.
        for child in reversed(self.children):
            child.stop(timeout)


def python_argv(*args: str) -> list[str]:
    return [sys.executable, *args]
