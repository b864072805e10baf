"""The suite's Redis users run against a Redis the suite starts itself, never a machine's 6379.

A fresh machine (a CI runner, a new clone) has no Redis service; the channels_redis delivery
tests and the ws_latency bench run still pass there because tests/support/redis.py starts
Debian's redis-server on a free port when OPS_TEST_REDIS_URL is unset.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from tests.execution.realtime.live import delivery_env
from tests.support.processes import REPO_ROOT
from tests.support.redis import suite_redis_url

MACHINE_DEFAULT_PORT = 6379  # the port a distribution's Redis service listens on


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.skipif(bool(os.environ.get("OPS_TEST_REDIS_URL")), reason="OPS_TEST_REDIS_URL names a Redis")
def test_the_redis_delivery_path_uses_the_suites_own_server() -> None:
    url = delivery_env("redis")["REDIS_URL"]
    assert url == suite_redis_url()
    port = urlsplit(url).port
    assert port is not None and port != MACHINE_DEFAULT_PORT, url
    assert redis.Redis.from_url(url).ping()


def test_a_fresh_process_starts_and_stops_its_own_redis() -> None:
    """What a machine without a Redis service sees: start on first use, gone after stop."""
    script = (
        "import json, redis\n"
        "from tests.support import redis as suite\n"
        "url = suite.suite_redis_url()\n"
        "pong = redis.Redis.from_url(url).ping()\n"
        "directory = str(suite._server.dir)\n"
        "suite.stop_suite_redis()\n"
        "print(json.dumps({'url': url, 'pong': pong, 'dir': directory}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"OPS_TEST_REDIS_URL", "REDIS_URL"}}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    port = urlsplit(answer["url"]).port
    assert answer["pong"] is True
    assert port is not None and port != MACHINE_DEFAULT_PORT
    assert not _port_open(port), "the suite's redis-server still runs after stop"
    assert not Path(answer["dir"]).exists()


def test_no_test_or_bench_names_the_machine_redis_port() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "tests", "bench"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    here = Path(__file__).resolve()
    offenders = [
        name
        for name in tracked
        if (REPO_ROOT / name).resolve() != here
        and name.endswith(".py")
        and str(MACHINE_DEFAULT_PORT) in (REPO_ROOT / name).read_text()
    ]
    assert offenders == []
