"""PostgreSQL stops during API traffic (docs/contract.md#hostile-input): 503 with Retry-After
while it is down (API and pages), at most 5 log lines for the whole outage, 200 again within
5 s of it being back, with nothing restarted by hand.

A real daphne on a throwaway embedded cluster of its own (never the suite's), stopped with
pg_ctl and started again; both are stopped at the end whatever happens.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.opsconductor.test_embedded_pg import _env, _py, _stop
from tests.support.processes import REPO_ROOT, free_port, stop_process, wait_for_port

pytestmark = pytest.mark.slow
ACCESS_LINE = re.compile(r'^\S+ - - \[[^\]]+\] "[A-Z]+ ')


def _manage(state: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "manage.py"), *args],
        cwd=REPO_ROOT,
        env=_env(state),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_api_answers_503_while_postgres_is_down_and_recovers_by_itself(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    log_path = tmp_path / "daphne.log"
    web: subprocess.Popen[bytes] | None = None
    try:
        _manage(state, "migrate", "--noinput")
        token = json.loads(_manage(state, "demo", "--json", "--password", "outage-pass-1"))["users"][
            "operator"
        ]["token"]
        port = free_port()
        with log_path.open("wb") as log:
            web = subprocess.Popen(
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
                env=_env(state),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for_port(port, timeout=60)
        api = f"http://127.0.0.1:{port}/api/v1/executions/"
        headers = {"Authorization": f"Token {token}"}
        assert requests.get(api, headers=headers, timeout=10).status_code == 200

        _stop(state)
        logged_before = len(log_path.read_text().splitlines())
        answers: list[Any] = []
        for _ in range(15):  # bounded traffic while the database is down
            answers.append(requests.get(api, headers=headers, timeout=10))
            answers.append(
                requests.get(
                    f"http://127.0.0.1:{port}/executions/",
                    cookies={"sessionid": "x" * 32},
                    allow_redirects=False,
                    timeout=10,
                )
            )
            time.sleep(0.2)
        assert {a.status_code for a in answers} == {503}, [a.status_code for a in answers]
        assert all(a.headers.get("Retry-After") for a in answers)
        assert answers[0].json()["reason"] == "database_unavailable"

        started = _py(state, "from opsconductor import embedded_pg; embedded_pg.ensure_running()")
        assert started.returncode == 0, started.stderr[-2000:]
        back = time.monotonic()
        status = None
        while time.monotonic() - back < 5:
            status = requests.get(api, headers=headers, timeout=10).status_code
            if status == 200:
                break
            time.sleep(0.2)
        assert status == 200
        # daphne's access log has a line per request, outage or not; the rest is logging.
        outage_lines = [
            line for line in log_path.read_text().splitlines()[logged_before:] if not ACCESS_LINE.match(line)
        ]
        assert len(outage_lines) <= 5, outage_lines
        assert not any("Traceback" in line for line in outage_lines)
    finally:
        if web is not None:
            stop_process(web)
        _stop(state)
