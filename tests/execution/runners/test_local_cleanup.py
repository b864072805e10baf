"""A cancelled local command is left to its runner's cleanup(), which the engine calls."""

from __future__ import annotations

import threading
import time

import pytest

from execution.runners.base import ResolvedTarget
from execution.runners.connections import local
from execution.runners.registry import get_runner
from tests.execution.runners.conftest import make_ctx

pytestmark = pytest.mark.django_db


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_cleanup_finds_and_kills_the_process_group_of_a_cancelled_step() -> None:
    target = ResolvedTarget(asset_id="1", hostname="local-1", connection_type="local")
    ctx = make_ctx("command", {"command": "sleep 60"}, target=target, timeout=120)
    threading.Timer(1.0, ctx.cancel_event.set).start()
    result = local.run_command(ctx)
    assert result.status == "cancelled"
    pid = result.output["pid"]
    # run() stopped waiting; what it holds is handed to cleanup().
    assert ctx.held.names() == [f"local process group {pid}"] and _alive(pid)
    get_runner("command").cleanup(ctx, "cancelled")
    assert not ctx.held.names()
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)
