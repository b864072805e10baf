"""Readiness against a real ``manage.py qcluster``: ready while it heartbeats, not after it stops.

Skipped when no engine code writes ``worker_heartbeats`` (the test looks for code outside
the model that uses the table).
"""

from __future__ import annotations

import subprocess
import time
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from tests.support.processes import manage_argv, stop_process, subprocess_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"not {what} after {timeout}s")


def go_no_go_exit() -> int:
    try:
        call_command("go_no_go", stdout=StringIO())
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_ready_with_a_running_qcluster_and_not_after_it_stops(client: Client, policies: None) -> None:
    assert client.get("/readyz").status_code == 503
    assert go_no_go_exit() == 1
    proc = subprocess.Popen(
        manage_argv("qcluster"),
        env=subprocess_env(OPS_WORKERS="1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        last: list[Any] = []

        def ready() -> bool:
            response = client.get("/readyz")
            last[:] = [response.json()]
            return response.status_code == 200

        try:
            wait_until(ready, 120, "ready with a qcluster")
        except AssertionError:
            raise AssertionError(
                f"not ready with a qcluster: {last} (qcluster exit: {proc.poll()})"
            ) from None
        assert go_no_go_exit() == 0
    finally:
        stop_process(proc, timeout=60)
    wait_until(
        lambda: client.get("/readyz").json()["failing"] == ["workers"],
        90,
        "failing on workers after the qcluster stopped",
    )
    assert go_no_go_exit() == 1
