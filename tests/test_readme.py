"""The README's examples, executed: its REST block runs word for word in bash (real curl)
against a real daphne and a real worker cluster on the test database, and every plan in
docs/examples/ is submitted the way the README says and ends as it should."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.execution.engine.helpers import worker_cluster
from tests.execution.realtime.live import daphne_server
from tests.support.debian import debian_program
from tests.support.processes import REPO_ROOT, subprocess_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

README = (REPO_ROOT / "README.md").read_text()
FINISHED = {"completed", "failed", "partial", "cancelled", "timeout", "rejected"}


def rest_block() -> str:
    section = README.split("\n## REST API\n")[1].split("\n## ")[0]
    return section.split("```sh\n")[1].split("\n```")[0]


def _sandbox(tmp_path: Path, curl: str) -> tuple[Path, Path]:
    """A working directory that looks like the repository to the block (its ``.venv``,
    ``manage.py``, ``docs/``; a ``.state`` of its own), and a ``curl`` on the PATH that runs
    the real one and keeps each answer's status line and headers (``-D``) in order."""
    work = tmp_path / "work"
    work.mkdir()
    (work / ".state").mkdir()
    (work / ".venv").symlink_to(Path(sys.executable).parent.parent)
    (work / "manage.py").symlink_to(REPO_ROOT / "manage.py")
    (work / "docs").symlink_to(REPO_ROOT / "docs")
    answers = tmp_path / "answers"
    answers.mkdir()
    shims = tmp_path / "bin"
    shims.mkdir()
    shim = shims / "curl"
    shim.write_text(
        f'#!/bin/sh\nn=$(ls "{answers}" | wc -l)\nexec {curl} -D "{answers}/$(printf %03d "$n")" "$@"\n'
    )
    shim.chmod(0o755)
    return work, shims


def _answers(directory: Path) -> list[tuple[int, dict[str, str]]]:
    found = []
    for path in sorted(directory.iterdir()):
        lines = path.read_text().strip().splitlines()
        status = int(lines[0].split()[1])
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        found.append((status, {k.lower(): v.strip() for k, v in headers.items()}))
    return found


def _finished(base: str, token: str, execution_id: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = requests.get(
            f"{base}/api/v1/executions/{execution_id}/",
            headers={"Authorization": f"Token {token}"},
            timeout=30,
        ).json()
        if body.get("status") in FINISHED:
            return body
        time.sleep(0.5)
    raise AssertionError(f"{execution_id} still {body.get('status')} after {timeout}s")


def _vote(base: str, token: str, execution_id: str) -> None:
    answer = requests.post(
        f"{base}/api/v1/executions/{execution_id}/approve/",
        json={"comment": "ok"},
        headers={"Authorization": f"Token {token}"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text


def test_the_rest_block_and_the_example_plans_work_as_written(tmp_path: Path) -> None:
    curl = debian_program("curl", "curl", why="README example test")
    work, shims = _sandbox(tmp_path, curl)
    with worker_cluster(workers=2), daphne_server(subprocess_env(), tmp_path / "daphne.log") as port:
        # A port other than the default: the block must take it from OPS_PORT.
        assert port != 8000
        env = subprocess_env(OPS_PORT=str(port), PATH=f"{shims}{os.pathsep}{os.environ['PATH']}")
        run = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", rest_block()],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stderr[-2000:]
        answers = _answers(tmp_path / "answers")
        codes = [status for status, _ in answers]
        # submit, replay, list, approve, events, cancel, the prod deploy
        assert codes[:5] == [202, 200, 200, 200, 200], (codes, run.stdout[-2000:])
        assert codes[5] in (200, 409) and codes[6] == 202, codes
        assert answers[1][1]["idempotent-replay"] == "true"
        demo = json.loads((work / ".state" / "demo.json").read_text())
        tokens = {name: user["token"] for name, user in demo["users"].items()}
        base = f"http://127.0.0.1:{port}"
        submitted = re.findall(r'"execution_id":\s*"([0-9a-f-]{36})"', run.stdout)
        restart = submitted[0]  # the replay's body names the first submission
        assert _finished(base, tokens["operator"], restart)["status"] in ("completed", "cancelled")
        deploy = submitted[-1]
        for approver in ("approver1", "approver2"):  # the prod deploy needs two votes
            _vote(base, tokens[approver], deploy)
        assert _finished(base, tokens["deployer"], deploy)["status"] == "completed"
        _every_example_plan(base, tokens)


# Who submits each example (the README: the operator's token, the prod deploy the
# deployer's), the approvers it needs, and how it ends.
EXAMPLES = {
    "read-uptime.json": ("operator", [], "completed"),
    "restart-service-staging.json": ("operator", ["approver1"], "completed"),
    "deploy-prod.json": ("deployer", ["approver1", "approver2"], "completed"),
    # A drill that cannot finish within its medium SLA: it ends timeout.
    "sla-drill.json": ("operator", [], "timeout"),
}


def _every_example_plan(base: str, tokens: dict[str, str]) -> None:
    files = sorted(p.name for p in (REPO_ROOT / "docs" / "examples").glob("*.json"))
    assert files == sorted(EXAMPLES), "a plan in docs/examples/ this test does not run"
    started = {}
    for name, (who, approvers, _end) in EXAMPLES.items():
        body = json.loads((REPO_ROOT / "docs" / "examples" / name).read_text())
        body["plan"]["name"] += " (examples test)"  # not a replay of the block's submissions
        answer = requests.post(
            f"{base}/api/v1/executions/",
            json=body,
            headers={"Authorization": f"Token {tokens[who]}"},
            timeout=60,
        )
        assert answer.status_code in (201, 202), (name, answer.text)
        started[name] = answer.json()["execution_id"]
        for approver in approvers:
            _vote(base, tokens[approver], started[name])
    for name, (who, _approvers, end) in EXAMPLES.items():
        done = _finished(base, tokens[who], started[name], timeout=240)
        assert done["status"] == end, (name, done["status"], done.get("error_message"))


def test_the_commands_outside_the_block_name_the_demo_tenant_and_a_user() -> None:
    """Lines of the README the block does not run: the demo tenant is ``demo``, and the
    commands that act for someone name them with ``--user``."""
    assert "--tenant acme" not in README
    assert re.search(r"dlq requeue <id> --user \w+", README)
    assert re.search(r"manage.py submit plan.json --tenant demo --user \w+", README)
