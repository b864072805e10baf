"""A web process serves HTTP on a fixed pool of threads, each keeping its connection.

Django's own ASGI handler gave every request a new thread and so a new PostgreSQL
connection; the old ones stayed open until their threads were collected, and a burst of
requests filled ``max_connections`` (the web process then answered 503). A real daphne
with ``OPS_WEB_THREADS=3`` answers a burst from 16 clients while holding at most three
connections for requests (plus its LISTEN bridge), reused from one request to the next.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from typing import Any

import pytest
import requests
from django.db import connection

from execution.models import Execution, QueueItem
from execution.services.cancel import execution_cancel
from tests.execution.api.conftest import noop_body
from tests.execution.engine.helpers import wait_until
from tests.factories import token_for
from tests.support.processes import REPO_ROOT, free_port, stop_process, subprocess_env, wait_for_port

pytestmark = pytest.mark.django_db(transaction=True)
APP_NAME = "ops-web-threads-test"


def _backends() -> list[tuple[int, Any]]:
    with connection.cursor() as cur:
        cur.execute("SELECT pid, backend_start FROM pg_stat_activity WHERE application_name = %s", [APP_NAME])
        return list(cur.fetchall())


def test_a_burst_of_requests_uses_at_most_web_threads_connections(tenant: Any, operator: Any) -> None:
    token = token_for(operator)
    port = free_port()
    # libpq names every connection of the web process (PGAPPNAME), so they can be counted.
    env = subprocess_env(OPS_WEB_THREADS="3", PGAPPNAME=APP_NAME, REDIS_URL="")
    web = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "opsconductor.asgi:application"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    statuses: list[int] = []
    seen: set[tuple[int, Any]] = set()
    try:
        wait_for_port(port, timeout=60)
        url = f"http://127.0.0.1:{port}/api/v1/executions/?tenant={tenant.slug}"

        def client() -> None:
            with requests.Session() as session:
                for _ in range(15):
                    answer = session.get(url, headers={"Authorization": f"Token {token}"}, timeout=60)
                    statuses.append(answer.status_code)

        for _ in range(2):  # two bursts: the second one reuses the first one's connections
            threads = [threading.Thread(target=client) for _ in range(16)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            seen |= set(_backends())
    finally:
        stop_process(web)
    assert statuses.count(200) == 2 * 16 * 15, sorted(set(statuses))
    # Three request threads, and at most one more for the LISTEN bridge of live progress.
    assert 1 <= len(seen) <= 4, seen


def test_immediate_submissions_never_take_every_thread(tenant: Any, operator: Any) -> None:
    """With two threads (one immediate waiter): while one immediate submission waits for a
    worker (none runs here), the next is answered 202 at once, queued, and /healthz answers.
    Each waiting submission held a thread, so two of them left the process without a free
    thread until one gave up (``OPS_IMMEDIATE_WAIT_SECONDS``)."""
    token = token_for(operator)
    headers = {"Authorization": f"Token {token}"}
    port = free_port()
    env = subprocess_env(OPS_WEB_THREADS="2", OPS_IMMEDIATE_WAIT_SECONDS="120", REDIS_URL="")
    web = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "opsconductor.asgi:application"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/api/v1/executions/"
    first: list[requests.Response] = []
    waiting = threading.Thread(
        target=lambda: first.append(
            requests.post(url, json=noop_body(estimate=1, name="waits"), headers=headers, timeout=150)
        )
    )
    try:
        wait_for_port(port, timeout=60)
        waiting.start()
        wait_until(
            lambda: Execution.objects.filter(plan_snapshot__name="waits").exists(), 60, what="the first"
        )
        second = requests.post(url, json=noop_body(estimate=1, name="next"), headers=headers, timeout=60)
        health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=60)
        assert waiting.is_alive(), "the first submission still waits for its worker"
        # Let the first one end: its execution cancelled, its wait sees a final status.
        execution_cancel(execution=Execution.objects.get(plan_snapshot__name="waits"), actor=operator)
        waiting.join(60)
    finally:
        stop_process(web)
    assert (second.status_code, second.json()["execution_mode"], second.json()["status"]) == (
        202,
        "immediate",
        "queued",
    ), second.content
    assert QueueItem.objects.get(execution__plan_snapshot__name="next").priority == 1
    assert health.status_code == 200
    assert [r.status_code for r in first] == [201] and first[0].json()["status"] == "cancelled"
