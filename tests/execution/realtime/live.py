"""Helpers for live-progress tests: a daphne server, a producer process, a WebSocket client.

The producer is a separate Python process that drives a three-step execution through
``transition()``, ``event_record()`` and ``step_output_record()`` -- the same services the
engine's workers use -- so events cross a process boundary exactly as a worker's do. (It is
a stand-in for a worker cluster, which runs plans through the same calls.)
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support.processes import REPO_ROOT, free_port, stop_process, subprocess_env, wait_for_port
from tests.support.redis import suite_redis_url


def run_async(coro: Any) -> Any:
    """``asyncio.run`` in a fresh thread: Playwright's sync API keeps a loop in the main one."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(coro)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def delivery_env(path: str) -> dict[str, str]:
    """Environment of child processes for one delivery path: "redis" or "bridge"."""
    env = subprocess_env()
    if path == "redis":
        env["REDIS_URL"] = suite_redis_url()
    else:
        env.pop("REDIS_URL", None)
    return env


@contextmanager
def daphne_server(env: dict[str, str], log: Path, port: int | None = None) -> Iterator[int]:
    port = port or free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "opsconductor.asgi:application",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(port, timeout=60)
            yield port
        finally:
            stop_process(proc)


def start_producer(
    env: dict[str, str],
    execution_pk: int,
    *,
    step_seconds: float = 0.3,
    pause_file: Path | None = None,
    pause_after_step: int = 0,
    start_file: Path | None = None,
    log: Path | None = None,
) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "tests.execution.realtime.producer", str(execution_pk), str(step_seconds)]
    if pause_file is not None:
        argv += ["--pause-file", str(pause_file), "--pause-after", str(pause_after_step)]
    if start_file is not None:
        argv += ["--start-file", str(start_file)]
    out = log.open("wb") if log else subprocess.DEVNULL
    return subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_exit(proc: subprocess.Popen[bytes], timeout: float = 120) -> int:
    return proc.wait(timeout)


async def ws_collect(
    url: str, *, until_type: str | None = None, max_events: int | None = None, timeout: float = 60
) -> list[dict[str, Any]]:
    """Connect, collect messages until one of ``until_type`` or ``max_events``; then close."""
    from websockets.asyncio.client import connect

    received: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    async with connect(url, open_timeout=30) as ws:
        while time.monotonic() < deadline:
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                break
            message = json.loads(raw)
            received.append(message)
            if until_type and message.get("type") == until_type:
                break
            if max_events and len(received) >= max_events:
                break
    return received


async def ws_close_code(url: str, timeout: float = 30) -> int | None:
    """The close code the server sends right after the handshake (None if it stays open)."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    async with connect(url, open_timeout=30) as ws:
        try:
            await asyncio.wait_for(ws.recv(), timeout=timeout)
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None
        except TimeoutError:
            return None
    return None
